"""Edges: turn outside input (command lines, HTTP requests, settings) into one library call, render the answer.

No logic lives here that a Python user of the library cannot reach.
"""
