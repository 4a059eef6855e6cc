"""CEL rules (addendum §6): santad's cel.v1 environment, compiling an expression and evaluating it.

The engine is `cel-expr-python`, Google's Python binding of cel-cpp — the C++ CEL implementation northpolesec/santa
itself links — with its strings extension, as Santa's `Evaluator` adds it. The same parser, type checker and runtime
as Santa's mean the same expressions compile (an undeclared name or an unknown `target` field is a compile error)
and evaluate alike (timestamps, lists, maps, string functions). It and `protobuf` (for `target`'s message type) are
imported on first use only: `import santacore`, `rule --list` and a decision without CEL rules never load them.

The environment is Santa's v1 (`Activation<false>::GetVariables`):
* `target`, a `santa.cel.v1.ExecutableFile` message: `signing_time`, `secure_signing_time` (Timestamp; unset reads
  as the epoch, proto3's default), `signing_id` (Santa's formatted `TEAMID:id` / `platform:id`, as NS's tests fill
  it), `is_platform_binary`, `team_id`. Only field *names* reach CEL; the numbers here are santacore's.
* `args` list<string>, `envs` map<string,string>, `euid` int, `cwd` string, `path` string.
* the return constants ALLOWLIST 1, ALLOWLIST_COMPILER 2, BLOCKLIST 3, SILENT_BLOCKLIST 4, SILENT_GUI_BLOCKLIST 9,
  SILENT_TTY_BLOCKLIST 10 as ints (UNSPECIFIED is not declared in v1: naming it fails the compile).
A result is `true` (ALLOWLIST), `false` (BLOCKLIST) or an int that is a ReturnValue number (0, UNSPECIFIED, included:
"no decision"); anything else is an evaluation error.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from santacore.santad.rules import RuleError

if TYPE_CHECKING:
    from santacore.identity.fileinfo import FileInfo

RETURN_VALUES: Mapping[str, int] = {
    "ALLOWLIST": 1,
    "ALLOWLIST_COMPILER": 2,
    "BLOCKLIST": 3,
    "SILENT_BLOCKLIST": 4,
    "SILENT_GUI_BLOCKLIST": 9,
    "SILENT_TTY_BLOCKLIST": 10,
}
UNSPECIFIED = 0
# santa.cel.v1.ReturnValue's numbers: an int result must be one of them (Evaluator: FindValueByNumber).
_VALID_RESULTS = frozenset({UNSPECIFIED, *RETURN_VALUES.values()})
RETURN_NAMES: Mapping[int, str] = {number: name for name, number in RETURN_VALUES.items()} | {0: "UNSPECIFIED"}
_PACKAGE = "santa.cel.v1"
_TARGET = f"{_PACKAGE}.ExecutableFile"


class CELError(RuleError):
    """An expression that does not compile, or an evaluation that fails or returns no ReturnValue."""


@dataclass(frozen=True)
class CELTarget:
    """`target`: what the executable file itself says (Santa caches results that read nothing else)."""

    signing_id: str = ""
    team_id: str = ""
    is_platform_binary: bool = False
    signing_time: int | None = None
    """Unix seconds (the CMS signing time the developer chose), None when the signature has none."""
    secure_signing_time: int | None = None
    """Unix seconds (Apple's timestamp authority), None when absent."""

    @classmethod
    def from_file_info(cls, fi: FileInfo) -> CELTarget:
        host = fi.host
        return cls(
            signing_id=fi.santa_signing_id or "",
            team_id=fi.team_id or "",
            is_platform_binary=bool(fi.platform_binary),
            signing_time=host.signing_time if host else None,
            secure_signing_time=host.secure_signing_time if host else None,
        )


@dataclass(frozen=True)
class CELInputs:
    """Everything a v1 expression can read about one execution."""

    target: CELTarget = field(default_factory=CELTarget)
    args: tuple[str, ...] = ()
    envs: Mapping[str, str] = field(default_factory=dict)
    euid: int = 0
    cwd: str = ""
    path: str = ""

    @classmethod
    def for_file(
        cls,
        fi: FileInfo,
        *,
        args: Sequence[str] | None = None,
        envs: Mapping[str, str] | None = None,
        euid: int | None = None,
        cwd: str | None = None,
    ) -> CELInputs:
        """The inputs of executing `fi` now: argv defaults to the path alone, the environment to none, euid and cwd
        to this process's."""
        return cls(
            target=CELTarget.from_file_info(fi),
            args=tuple(args) if args is not None else (fi.path,),
            envs=dict(envs or {}),
            euid=os.geteuid() if euid is None else euid,
            cwd=os.getcwd() if cwd is None else cwd,
            path=fi.path,
        )


class _Environment:
    """Santa's v1 compiler and the message class of `target`, built once per process."""

    def __init__(self) -> None:
        # cel-cpp: loaded only when a CEL rule is compiled or evaluated. It ships .pyi files without py.typed;
        # protobuf's stubs are a separate package: values from both are handled as Any here.
        from cel_expr_python import cel  # type: ignore[import-untyped, unused-ignore]
        from cel_expr_python.ext import ext_strings  # type: ignore[import-untyped, unused-ignore]
        from google.protobuf import (  # type: ignore[import-untyped, unused-ignore]
            descriptor_pb2,
            descriptor_pool,
            message_factory,
            timestamp_pb2,
        )

        field_type = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(
            name="santacore/cel_v1.proto",
            package=_PACKAGE,
            syntax="proto3",
            dependency=["google/protobuf/timestamp.proto"],
        )
        message = proto.message_type.add(name="ExecutableFile")
        for number, (name, kind) in enumerate(
            (
                ("signing_time", field_type.TYPE_MESSAGE),
                ("secure_signing_time", field_type.TYPE_MESSAGE),
                ("signing_id", field_type.TYPE_STRING),
                ("is_platform_binary", field_type.TYPE_BOOL),
                ("team_id", field_type.TYPE_STRING),
            ),
            1,
        ):
            added = message.field.add(name=name, number=number, type=kind, label=field_type.LABEL_OPTIONAL)
            if kind == field_type.TYPE_MESSAGE:
                added.type_name = ".google.protobuf.Timestamp"
        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
        pool.Add(proto)
        self.target_class: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName(_TARGET))
        variables = {name: cel.Type.INT for name in RETURN_VALUES} | {
            "target": cel.Type(_TARGET),
            "args": cel.Type.List(cel.Type.STRING),
            "envs": cel.Type.Map(cel.Type.STRING, cel.Type.STRING),
            "euid": cel.Type.INT,
            "cwd": cel.Type.STRING,
            "path": cel.Type.STRING,
        }
        self.error_type: Any = cel.Type.ERROR
        self.env: Any = cel.NewEnv(pool, variables=variables, extensions=[ext_strings.ExtStrings()])

    def target(self, t: CELTarget) -> Any:
        message = self.target_class(signing_id=t.signing_id, team_id=t.team_id, is_platform_binary=t.is_platform_binary)
        for name, seconds in (("signing_time", t.signing_time), ("secure_signing_time", t.secure_signing_time)):
            if seconds is not None:
                getattr(message, name).FromDatetime(datetime.fromtimestamp(seconds, UTC))
        return message


@functools.cache
def _environment() -> _Environment:
    return _Environment()


@functools.lru_cache(maxsize=128)  # santad keeps 128 compiled plans too (kCELPlanCacheMaxSize)
def _compiled(expression: str) -> Any:
    try:
        return _environment().env.compile(expression)
    except RuntimeError as e:  # cel-cpp's status, e.g. "INVALID_ARGUMENT: ERROR: <input>:1:6: Syntax error: ..."
        raise CELError(_status_text(e)) from None


def _status_text(e: Exception) -> str:
    text = str(e).strip()
    for prefix in ("INVALID_ARGUMENT: ", "ERROR: "):
        text = text.removeprefix(prefix)
    # The first line says what and where (`<input>:1:6: Syntax error: ...`); the rest is a caret drawing.
    return text.removesuffix("[INVALID_ARGUMENT]").strip().splitlines()[0]


def compile_error(expression: str) -> str | None:
    """Why `expression` does not compile in Santa's v1 environment, or None when it does."""
    if not expression.strip():
        return "empty CEL expression"
    try:
        _compiled(expression)
    except CELError as e:
        return str(e)
    return None


def evaluate(expression: str, inputs: CELInputs) -> int:
    """The ReturnValue number `expression` gives for `inputs` (`UNSPECIFIED`, 0, means no decision); CELError when it
    does not compile, fails while evaluating, or returns anything but a bool or a ReturnValue number."""
    plan = _compiled(expression)
    env = _environment()
    data = dict(RETURN_VALUES) | {
        "target": env.target(inputs.target),
        "args": list(inputs.args),
        "envs": dict(inputs.envs),
        "euid": inputs.euid,
        "cwd": inputs.cwd,
        "path": inputs.path,
    }
    try:
        result = plan.eval(data=data)
    except RuntimeError as e:
        raise CELError(f"evaluation failed: {_status_text(e)}") from None
    value = result.value()
    if result.type() == env.error_type:  # an error value (no such key, division by zero, ...): its text
        raise CELError(f"evaluation failed: {value}")
    if isinstance(value, bool):
        return RETURN_VALUES["ALLOWLIST"] if value else RETURN_VALUES["BLOCKLIST"]
    if isinstance(value, int) and value in _VALID_RESULTS:
        return value
    raise CELError(f"expected 'ReturnValue' result got {value!r}")
