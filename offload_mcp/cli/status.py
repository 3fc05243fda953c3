"""placeholder"""
import click

@click.group() 
def status() -> None:
    """todo"""
