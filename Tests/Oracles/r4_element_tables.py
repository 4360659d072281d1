#!/usr/bin/env python3
"""Compares caresync's hand-written FHIR R4 element tables with the fhirclient models (generated from
FHIR 4.0.1), an independent source. Reads the tables as JSON on stdin:

    {"CarePlan": [{"json": "status", "min": 1, "repeats": false, "type": "code", "choice": null}, ...],
     "CarePlan.activity": [...], "Identifier": [...], ...}

Prints one line per difference and exits 1 when there is any; exits 3 when fhirclient is not installed.
Checks, per structure: the same JSON element names (own and inherited), list or single, required or not,
the same choice group, and the same type (fhirclient writes every string-like primitive as `str`).
"""
import importlib
import json
import sys

try:
    import fhirclient.models  # noqa: F401
except ImportError:
    print("fhirclient is not installed (python3 -m pip install fhirclient)")
    sys.exit(3)

PRIMITIVE_CLASSES = {
    "boolean": "bool", "integer": "int", "positiveInt": "int", "unsignedInt": "int", "decimal": "float",
    "date": "FHIRDate", "dateTime": "FHIRDateTime", "instant": "FHIRInstant", "time": "FHIRTime",
}
STRING_PRIMITIVES = {"base64Binary", "canonical", "code", "id", "markdown", "oid", "string", "uri", "url", "uuid", "xhtml"}
# caresync's name → fhirclient's class, where they differ. SimpleQuantity is a profile of Quantity.
CLASS_NAMES = {"Reference": "FHIRReference", "SimpleQuantity": "Quantity"}


def class_name(structure):
    """`CarePlan.activity.detail` → `CarePlanActivityDetail`."""
    return "".join(part[0].upper() + part[1:] for part in structure.split("."))


def load_class(structure):
    name = CLASS_NAMES.get(structure, structure)
    module = importlib.import_module("fhirclient.models." + name.split(".")[0].lower())
    return getattr(module, class_name(name))


def expected_class(element_type):
    if element_type in PRIMITIVE_CLASSES:
        return PRIMITIVE_CLASSES[element_type]
    if element_type in STRING_PRIMITIVES:
        return "str"
    return class_name(CLASS_NAMES.get(element_type, element_type))


def main():
    tables = json.load(sys.stdin)
    problems = []
    for structure, elements in sorted(tables.items()):
        cls = load_class(structure)
        theirs = {p[1]: p for p in cls.elementProperties(cls())}
        ours = {e["json"]: e for e in elements}
        for name in sorted(set(theirs) - set(ours)):
            problems.append(f"{structure}.{name}: in FHIR R4 (fhirclient) but not in the caresync table")
        for name in sorted(set(ours) - set(theirs)):
            problems.append(f"{structure}.{name}: in the caresync table but not in FHIR R4 (fhirclient)")
        for name in sorted(set(ours) & set(theirs)):
            mine = ours[name]
            _, _, typ, is_list, of_many, not_optional = theirs[name]
            if mine["repeats"] != is_list:
                problems.append(f"{structure}.{name}: repeats={mine['repeats']} but fhirclient says list={is_list}")
            if (mine["min"] > 0) != not_optional:
                problems.append(f"{structure}.{name}: min={mine['min']} but fhirclient says required={not_optional}")
            if mine["choice"] != of_many:
                problems.append(f"{structure}.{name}: choice group {mine['choice']} but fhirclient says {of_many}")
            if expected_class(mine["type"]) != typ.__name__:
                problems.append(f"{structure}.{name}: type {mine['type']} but fhirclient says {typ.__name__}")
    for line in problems:
        print(line)
    print(f"compared {len(tables)} structures, {sum(len(e) for e in tables.values())} element names: "
          f"{len(problems)} differences")
    sys.exit(1 if problems else 0)


main()
