"""Synthetic image effects for training and testing: lens defocus (psf) and the nuisances that are not defocus (nuisances)."""
