"""placeholder"""
import click

@click.group() 
def config() -> None:
    """todo"""
