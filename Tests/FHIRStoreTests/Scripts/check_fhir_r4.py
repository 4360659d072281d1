#!/usr/bin/env python3
"""Independent FHIR R4 check of JSON documents, for caresync-store's tests.

Usage: check_fhir_r4.py FILE...  Each FILE holds one FHIR resource as JSON. Every file is loaded into the
matching `fhirclient` R4 (4.0.1) model with strict=True, which refuses unknown elements, wrong types, bad
primitive formats and missing required elements (nested Bundle resources included).
Prints `ok FILE` or `invalid FILE: reason` per file; exits 1 if any file is invalid, 2 on usage errors.
"""
import importlib
import json
import sys


def check(path):
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str):
        return "no resourceType"
    try:
        module = importlib.import_module("fhirclient.models." + resource_type.lower())
        model = getattr(module, resource_type)
    except (ImportError, AttributeError):
        return "fhirclient has no R4 model for " + repr(resource_type)
    try:
        instance = model(document, strict=True)
    except Exception as error:  # fhirclient raises FHIRValidationError (and others) on bad input
        return "%s: %s" % (type(error).__name__, error)
    if instance.as_json() is None:
        return "the model serialised to nothing"
    return None


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        problem = check(path)
        if problem is None:
            print("ok " + path)
        else:
            failed = True
            print("invalid %s: %s" % (path, problem.replace("\n", " ")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
