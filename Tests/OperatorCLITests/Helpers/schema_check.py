#!/usr/bin/env python3
"""Validates a JSON document against a JSON Schema (draft 2020-12) with Python `jsonschema`, an
implementation independent of caresync. Usage: schema_check.py SCHEMA DOCUMENT
Exit 0 valid; 1 invalid (each error printed); 3 jsonschema missing."""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("jsonschema is not installed")
    sys.exit(3)

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
document = json.load(open(sys.argv[2]))
errors = sorted(jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).iter_errors(document),
                key=lambda e: list(e.absolute_path))
for error in errors:
    print("/".join(str(p) for p in error.absolute_path) or "(root)", ":", error.message)
sys.exit(1 if errors else 0)
