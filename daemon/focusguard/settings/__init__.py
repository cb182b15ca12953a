"""The one YAML file: parsing with file/key/problem messages (`yamlconf`), the validated
configuration (`config`, `config_extras` for refocus and other add-ons). May import `common` and
the model metadata of `analysis` (labels, the fusion model's classes) to validate against it."""

from __future__ import annotations
