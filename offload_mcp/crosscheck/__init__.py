"""cross_check: one read-only question to models of different families at once, compared.

`families` groups providers by who built the model; `verdict` is the answer contract and the
comparison; `run` asks the families concurrently through the dispatcher; `report` writes the
prose Claude reads.
"""
