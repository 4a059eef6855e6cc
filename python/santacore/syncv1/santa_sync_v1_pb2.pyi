# Hand-written: protoc's --pyi_out stub would declare FileAccessAction's alias `None`, which is not valid Python.
# The generated classes are typed as Any; tests/test_proto_schema.py checks their fields against the spec.
from typing import Any

def __getattr__(name: str) -> Any: ...
