"""placeholder"""
import click

@click.group() 
def serve() -> None:
    """todo"""
