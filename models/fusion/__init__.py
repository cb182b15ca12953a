"""Offline fitting and evaluation of the fusion detector (focusguard.fusion): data, fit, leave-cameras-out."""
