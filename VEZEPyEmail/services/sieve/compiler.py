"""Parse a Sieve script with sievelib and compile the supported subset into `nodes`.

sievelib checks the grammar (RFC 5228 section 8) and that extensions are `require`d; this
module then refuses everything outside the subset this server runs, with the line it is on:

- control: require, if / elsif / else, stop
- tests: header and address (:is :contains :matches; address also :all :localpart :domain),
  exists, size :over / :under, allof, anyof, not, true, false
- actions: keep, discard, fileinto, redirect, addflag (imap4flags, RFC 5232),
  vacation :days :subject :addresses (RFC 5230)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email

# sievelib ships no type information.
from sievelib.commands import Command as SieveCommand  # type: ignore[import-untyped]
from sievelib.parser import Lexer, Parser  # type: ignore[import-untyped]
from sievelib.tools import unquote  # type: ignore[import-untyped]

from VEZEPyCore.errors import BadRequest
from VEZEPyEmail.services.folders.service import validate_name
from VEZEPyEmail.services.messages.schemas import MAX_LABEL_LENGTH, MAX_LABELS
from VEZEPyEmail.services.sieve import nodes

MAX_SCRIPT_BYTES = 64 * 1024
#: Nesting of blocks and tests; sievelib and this compiler recurse, so keep it shallow.
MAX_DEPTH = 24
MAX_KEY_LENGTH = 1024
MAX_REASON_LENGTH = 8 * 1024
MAX_VACATION_DAYS = 30
#: An error quotes what it refuses; a 60 KB unterminated string is cut, not echoed whole.
MAX_ERROR_LENGTH = 300
DEFAULT_VACATION_DAYS = 7

#: Capabilities a script may `require`; the comparators are always there (RFC 4790).
CAPABILITIES = frozenset(
    {"fileinto", "imap4flags", "vacation", "comparator-i;octet", "comparator-i;ascii-casemap"}
)
#: RFC 5228 section 5.1: the address test only looks at headers that hold addresses.
ADDRESS_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "reply-to",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-sender",
        "return-path",
        "delivered-to",
        "envelope-to",
        "x-original-to",
    }
)
SYSTEM_FLAGS = {"\\seen": "\\Seen", "\\flagged": "\\Flagged", "\\answered": "\\Answered"}
SYSTEM_FLAGS["\\draft"] = "\\Draft"
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")
_KEYWORD_FORBIDDEN = re.compile(r'[\x00-\x20\x7f(){%*"\\\]]')
_MULTILINE_HEAD = re.compile(r"text:[ \t]*(#[^\n]*)?\r?\n")


class SieveError(ValueError):
    """The script is not valid here. `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 1] + "…"
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


def compile_script(text: str) -> nodes.Program:
    """The compiled program, or SieveError saying what is wrong and where."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate, e.g. from a JSON "\ud800"
        raise SieveError("the script is not valid Unicode text") from error
    if len(data) > MAX_SCRIPT_BYTES:
        raise SieveError(f"the script is larger than {MAX_SCRIPT_BYTES // 1024} KB")
    if "\x00" in text:
        raise SieveError("the script contains a NUL character")
    parser = Parser()
    if not parser.parse(data):
        raise _parse_error(str(parser.error))
    _check_ends_cleanly(data)
    return _Compiler(data).program(parser.result)


def _parse_error(error: str) -> SieveError:
    match = re.match(r"line (\d+): (?:parsing error: )?(.*)", error, re.DOTALL)
    if match is None:
        return SieveError(error)
    return SieveError(match.group(2), int(match.group(1)))


def _check_ends_cleanly(data: bytes) -> None:
    """sievelib accepts a last command without its ";"; RFC 5228 section 8.2 does not."""
    lexer = Lexer(Parser.lrules)
    last: tuple[str, bytes] | None = None
    try:
        for token in lexer.scan(data):
            if token[0] not in ("hash_comment", "bracket_comment"):
                last = token
    except Exception as error:  # the parser accepted it, so this should not happen
        raise SieveError(str(error)) from error
    if last is not None and last[0] not in ("semicolon", "right_cbracket"):
        raise SieveError('the script ends without ";" or "}"', int(lexer.curlineno()))


class _Compiler:
    def __init__(self, data: bytes) -> None:
        self.data = data

    # -- errors with line numbers -----------------------------------------------------------
    def line_of(self, kind: str, value: str) -> int | None:
        """The line of the first token of `kind` spelled `value` (case-insensitive)."""
        lexer = Lexer(Parser.lrules)
        wanted = value.lower().encode()
        try:
            for token_kind, token in lexer.scan(self.data):
                if token_kind == kind and token.lower() == wanted:
                    return int(lexer.curlineno())
        except Exception:
            return None
        return None

    def error(self, message: str, *, command: str | None = None, tag: str | None = None) -> None:
        line = None
        if tag is not None:
            line = self.line_of("tag", tag)
        if line is None and command is not None:
            line = self.line_of("identifier", command)
        raise SieveError(message, line)

    # -- values ------------------------------------------------------------------------------
    def string(self, value: Any, command: str) -> str:
        if isinstance(value, list):
            self.error(f"{command} expects a single string, not a list", command=command)
        text = str(value)
        if text.startswith("text:"):
            return _multiline(text)
        return str(unquote(text))

    def strings(self, value: Any, command: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        result = tuple(self.string(item, command) for item in items)
        if any(len(item) > MAX_KEY_LENGTH for item in result):
            self.error(f"a string of {command} is longer than {MAX_KEY_LENGTH}", command=command)
        return result

    def header_names(self, value: Any, command: str) -> tuple[str, ...]:
        names = self.strings(value, command)
        for name in names:
            if not _FIELD_NAME.fullmatch(name):
                self.error(f"{name!r} is not a header field name", command=command)
        return tuple(name.lower() for name in names)

    # -- program -----------------------------------------------------------------------------
    def program(self, commands: list[SieveCommand]) -> nodes.Program:
        return nodes.Program(self.block(commands, depth=0, top=True))

    def block(
        self, commands: list[SieveCommand], *, depth: int, top: bool = False
    ) -> tuple[nodes.Command, ...]:
        if depth > MAX_DEPTH:
            self.error(f"blocks are nested deeper than {MAX_DEPTH}")
        compiled: list[nodes.Command] = []
        seen_other = False
        for command in commands:
            name = command.name
            if name == "require":
                if not top or seen_other:
                    # RFC 5228 section 3.2: require only at the start of the script.
                    self.error("require must come before any other command", command="require")
                self.require(command)
                continue
            seen_other = True
            if name in ("elsif", "else"):
                previous = compiled[-1] if compiled else None
                if not isinstance(previous, nodes.If) or previous.otherwise is not None:
                    self.error(f"{name} must follow if or elsif", command=name)
                assert isinstance(previous, nodes.If)
                body = self.block(command.children, depth=depth + 1)
                if name == "else":
                    compiled[-1] = nodes.If(previous.branches, body)
                else:
                    test = self.test(command.arguments["test"], depth=depth + 1)
                    compiled[-1] = nodes.If((*previous.branches, (test, body)), None)
                continue
            if name == "if":
                test = self.test(command.arguments["test"], depth=depth + 1)
                body = self.block(command.children, depth=depth + 1)
                compiled.append(nodes.If(((test, body),), None))
                continue
            compiled.append(self.action(command))
        return tuple(compiled)

    def require(self, command: SieveCommand) -> None:
        for capability in self.strings(command.arguments["capabilities"], "require"):
            if capability.lower() not in CAPABILITIES:
                self.error(
                    f"the {capability!r} extension is not supported here (supported: "
                    + ", ".join(sorted(CAPABILITIES))
                    + ")",
                    command="require",
                )

    def no_tags(self, command: SieveCommand, allowed: frozenset[str] = frozenset()) -> None:
        for value in command.arguments.values():
            if isinstance(value, str) and value.startswith(":") and value.lower() not in allowed:
                self.error(f"{command.name} {value} is not supported here", tag=value)

    def action(self, command: SieveCommand) -> nodes.Command:
        handler = self._actions.get(command.name)
        if handler is None:
            self.error(f"the {command.name} command is not supported here", command=command.name)
            raise AssertionError  # unreachable: error() raises
        return handler(self, command)

    def keep(self, command: SieveCommand) -> nodes.Command:
        self.no_tags(command)
        return nodes.Keep()

    def discard(self, command: SieveCommand) -> nodes.Command:
        return nodes.Discard()

    def stop(self, command: SieveCommand) -> nodes.Command:
        return nodes.Stop()

    def fileinto(self, command: SieveCommand) -> nodes.Command:
        self.no_tags(command)
        name = self.string(command.arguments["mailbox"], "fileinto")
        try:
            folder = validate_name(name)
        except BadRequest as error:
            self.error(f"fileinto {name!r}: {error.detail}", command="fileinto")
            raise
        return nodes.FileInto(folder)

    def redirect(self, command: SieveCommand) -> nodes.Command:
        self.no_tags(command)
        address = self.string(command.arguments["address"], "redirect")
        try:
            checked = validate_email(address, check_deliverability=False)
        except EmailNotValidError as error:
            self.error(f"redirect {address!r}: {error}", command="redirect")
            raise
        return nodes.Redirect(checked.normalized.lower())

    def addflag(self, command: SieveCommand) -> nodes.Command:
        if "variable-name" in command.arguments:
            self.error(
                "addflag with a variable name needs the variables extension", command="addflag"
            )
        flags: list[str] = []
        for item in self.strings(command.arguments["list-of-flags"], "addflag"):
            # RFC 5232 section 3: a string may hold several flags separated by spaces.
            for flag in item.split():
                flags.append(self.flag(flag))
        labels = [flag for flag in flags if not flag.startswith("\\")]
        if len(set(labels)) > MAX_LABELS:
            self.error(f"at most {MAX_LABELS} keywords", command="addflag")
        return nodes.AddFlag(tuple(dict.fromkeys(flags)))

    def flag(self, flag: str) -> str:
        if flag.startswith("\\"):
            system = SYSTEM_FLAGS.get(flag.lower())
            if system is None:
                self.error(
                    f"flag {flag} is not supported (use \\Seen, \\Flagged, \\Answered, "
                    "\\Draft or a keyword)",
                    command="addflag",
                )
                raise AssertionError
            return system
        if len(flag) > MAX_LABEL_LENGTH or _KEYWORD_FORBIDDEN.search(flag):
            self.error(
                f"keyword {flag!r} must be 1-{MAX_LABEL_LENGTH} characters without spaces, "
                'controls or (){%*"\\]',
                command="addflag",
            )
        return flag

    def vacation(self, command: SieveCommand) -> nodes.Command:
        self.no_tags(command, frozenset({":days", ":subject", ":addresses"}))
        extra = command.extra_arguments
        reason = self.string(command.arguments["reason"], "vacation")
        if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            self.error(
                f"the vacation text must be 1-{MAX_REASON_LENGTH} characters", command="vacation"
            )
        days = DEFAULT_VACATION_DAYS
        if "days" in extra:
            days = _number(str(extra["days"]))
            if not 1 <= days <= MAX_VACATION_DAYS:
                # RFC 5230 section 4.1: a minimum of one day; very long periods are clamped.
                self.error(f":days must be 1-{MAX_VACATION_DAYS}", tag=":days")
        subject = None
        if "subject" in extra:
            subject = self.string(extra["subject"], "vacation")
            if len(subject) > 200 or any(ord(ch) < 32 for ch in subject):
                self.error(":subject must be one line of at most 200 characters", tag=":subject")
        addresses: tuple[str, ...] = ()
        if "addresses" in extra:
            addresses = tuple(a.lower() for a in self.strings(extra["addresses"], "vacation"))
        return nodes.Vacation(reason=reason, days=days, subject=subject, addresses=addresses)

    _actions: dict[str, Callable[[_Compiler, SieveCommand], nodes.Command]] = {
        "keep": keep,
        "discard": discard,
        "stop": stop,
        "fileinto": fileinto,
        "redirect": redirect,
        "addflag": addflag,
        "vacation": vacation,
    }

    # -- tests -------------------------------------------------------------------------------
    def test(self, command: SieveCommand, *, depth: int) -> nodes.Test:
        if depth > MAX_DEPTH:
            self.error(f"tests are nested deeper than {MAX_DEPTH}", command=command.name)
        name = command.name
        arguments = command.arguments
        if name in ("true", "false"):
            return nodes.Const(name == "true")
        if name == "not":
            return nodes.Not(self.test(arguments["test"], depth=depth + 1))
        if name in ("allof", "anyof"):
            tests = tuple(self.test(item, depth=depth + 1) for item in arguments["tests"])
            return nodes.AllOf(tests) if name == "allof" else nodes.AnyOf(tests)
        if name == "exists":
            return nodes.ExistsTest(self.header_names(arguments["header-names"], "exists"))
        if name == "size":
            return nodes.SizeTest(
                over=str(arguments["comparator"]).lower() == ":over",
                limit=_number(str(arguments["limit"])),
            )
        if name == "header":
            return nodes.HeaderTest(
                names=self.header_names(arguments["header-names"], "header"),
                keys=self.strings(arguments["key-list"], "header"),
                match=self.match_type(command),
                comparator=self.comparator(command),
            )
        if name == "address":
            names = self.header_names(arguments["header-list"], "address")
            for header in names:
                if header not in ADDRESS_HEADERS:
                    self.error(
                        f"address cannot test {header!r}: it holds no addresses", command="address"
                    )
            part = str(arguments.get("address-part", ":all")).lower()
            return nodes.AddressTest(
                names=names,
                keys=self.strings(arguments["key-list"], "address"),
                part=cast(nodes.AddressPart, part),
                match=self.match_type(command),
                comparator=self.comparator(command),
            )
        self.error(f"the {name} test is not supported here", command=name)
        raise AssertionError

    def match_type(self, command: SieveCommand) -> nodes.MatchType:
        value = str(command.arguments.get("match-type", ":is")).lower()
        if value not in (":is", ":contains", ":matches"):
            self.error(f"{command.name} {value} is not supported here", tag=value)
        return cast(nodes.MatchType, value)

    def comparator(self, command: SieveCommand) -> nodes.Comparator:
        if "comparator" not in command.arguments:
            return "i;ascii-casemap"
        value = unquote(str(command.extra_arguments.get("comparator", ""))).lower()
        if value not in ("i;ascii-casemap", "i;octet"):
            self.error(f"comparator {value!r} is not supported", tag=":comparator")
        return cast(nodes.Comparator, value)


#: RFC 5228 section 2.4.1 leaves the range to the implementation; 18 digits fit a 64-bit int
#: and stop int() from refusing (or spending time on) a 20,000-digit literal.
MAX_NUMBER_DIGITS = 18


def _number(value: str) -> int:
    """RFC 5228 section 2.4.1: digits with an optional K, M or G quantifier."""
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(value[-1:].lower(), 1)
    digits = value[:-1] if scale != 1 else value
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_NUMBER_DIGITS:
        raise SieveError(f"the number {value[:24]!r} is not a number of at most 18 digits")
    return int(digits) * scale


def _multiline(text: str) -> str:
    """The body of a `text:` string: after its first line, before the "." line, dot-unstuffed."""
    head = _MULTILINE_HEAD.match(text)
    body = text[head.end() :] if head else text[len("text:") :]
    lines = body.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == ".":
        lines.pop()
    # RFC 5228 section 2.4.2: a line starting with "." had it doubled.
    return "\n".join(line[1:] if line.startswith("..") else line for line in lines)
