"""Presentation: the summary's markdown tables and the figures. Tables and labels in, never a
statistic object.

A new figure goes here. Imports :mod:`simulation.infra` and below.
"""
