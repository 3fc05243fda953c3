"""placeholder"""
import click

@click.group() 
def keys() -> None:
    """todo"""
