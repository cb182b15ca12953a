"""Offline fitting and evaluation of the fusion detector (focusguard.analysis.fusion): data, fit, leave-cameras-out."""
