"""Generate ``grammars/python.lark`` (run ``python -m grammar_lab.gen_python``; ``--check`` only compares).

Why a generator: llguidance's Lark dialect has no INDENT/DEDENT lexer, no ``%declare`` and no
templates, and its lexer is greedy, so what a Python grammar needs is spelled out rule by rule:

* **Indentation.** Every block depth ``d`` (0..MAX_DEPTH) gets its own statement rules and its own
  newline terminal ``NL_d``: a line end, any blank or comment-only lines, then exactly ``4*d`` spaces.
  A body at depth ``d+1`` is ``(NL_{d+1} stmt_{d+1})+``; a dedent is simply a shallower ``NL_k``.
* **Whitespace.** A global ``%ignore`` of spaces would let extra spaces follow an ``NL_d`` (so
  6-space indentation would pass as 4 + 2 ignored), so nothing is ignored. Instead every terminal
  carries its own *trailing* whitespace, and no terminal starts with whitespace: after ``NL_d`` the
  next byte must be the statement itself. Inside (), [] and {} newlines and comments are whitespace
  too, so terminals and expression rules come in two flavours: ``_L`` / ``_l`` (a logical line:
  spaces, tabs, backslash continuations) and ``_B`` / ``_b`` (inside brackets). Opening brackets
  exist only as ``_B`` terminals; a closing bracket takes the flavour of the rule it closes in.
* **Keywords after an expression.** The lexer is greedy and only tries the lexemes the parser allows
  next, so after ``x`` in ``x ifout`` it would read the keyword ``if`` and then ``out``. Keywords in
  those positions (``x if y``, ``a in b``, ``import a as b``, ...) must be followed by whitespace;
  the stdlib has no counter-example (0 of ~54,000 such keywords are directly followed by a token).
* **Counted repetition** (``{0,N}``) only where it is cheap: runs of blank lines and of ``.``, and
  comments (2000 characters, +10% mask time). Elsewhere it makes llguidance's token masks fail or
  crawl with a 151k-token vocabulary (details above LEXEMES), so strings, numbers, names and spaces
  stay unbounded.

Templates below are ordinary Lark with these conveniences the generator expands: ``"lit"``
becomes the terminal for that keyword or operator in the rule's flavour, ``"kw"_sp`` the
whitespace-requiring variant of a keyword, ``name_$`` / ``NAME_$`` become ``name_l`` / ``NAME_L``
(or ``_b`` / ``_B``), and ``{d}`` / ``{n}`` are the block depth and depth + 1. Rules not reachable
from ``start`` are dropped.

Known gaps (accepted by Python, rejected here): blocks deeper than MAX_DEPTH, indentation other
than 4 spaces per level, 3.12 f-strings that reuse their own quote or a backslash inside ``{}``, a
keyword directly followed by ``(``/``[`` after an expression (``x in(1, 2)``). Accepted here but
rejected by Python's parser: pattern-matching details (``**rest`` not last, positional
after keyword sub-patterns), f-string internals (the expression and conversion inside ``{}`` are not
parsed), and a backslash continuation right before the end of the file.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import grammars

#: Deepest block level the grammar accepts (level 0 = module level; 10 levels = 40 spaces).
MAX_DEPTH = 10
INDENT = "    "

#: The library grammar this writes, in the grammars package next to the loader.
OUTPUT = Path(grammars.__file__).resolve().parent / "python.lark"

#: Hard keywords: never identifiers (soft keywords ``match``/``case``/``type``/``_`` stay NAMEs).
# fmt: off
KEYWORDS = (
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
    "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
)
SOFT_KEYWORDS = ("match", "case", "type")

PUNCTUATION = {
    "(": "LPAR", ")": "RPAR", "[": "LSQB", "]": "RSQB", "{": "LBRACE", "}": "RBRACE",
    ":": "COLON", ",": "COMMA", ";": "SEMI", ".": "DOT", "...": "ELLIPSIS", "->": "RARROW",
    "=": "EQUAL", ":=": "COLONEQUAL", "@": "AT",
    "+": "PLUS", "-": "MINUS", "*": "STAR", "/": "SLASH", "//": "DOUBLESLASH", "%": "PERCENT",
    "**": "DOUBLESTAR", "|": "VBAR", "&": "AMPER", "^": "CIRCUMFLEX", "~": "TILDE",
    "<<": "LEFTSHIFT", ">>": "RIGHTSHIFT",
    "<": "LESS", ">": "GREATER", "==": "EQEQUAL", "!=": "NOTEQUAL", "<=": "LESSEQUAL",
    ">=": "GREATEREQUAL",
    "+=": "PLUSEQUAL", "-=": "MINEQUAL", "*=": "STAREQUAL", "/=": "SLASHEQUAL",
    "//=": "DOUBLESLASHEQUAL", "%=": "PERCENTEQUAL", "@=": "ATEQUAL", "&=": "AMPEREQUAL",
    "|=": "VBAREQUAL", "^=": "CIRCUMFLEXEQUAL", "<<=": "LEFTSHIFTEQUAL",
    ">>=": "RIGHTSHIFTEQUAL", "**=": "DOUBLESTAREQUAL",
}
# fmt: on
#: Their trailing whitespace is the bracket kind whatever the enclosing context.
OPENERS = {"(", "[", "{"}

# ---------------------------------------------------------------------------------------------
# Expression-level rules, instantiated twice: $ = l (on a logical line) and $ = b (in brackets).
# Operator precedence is flattened (bitwise_or_$): the grammar only has to accept or reject, and
# the flat form accepts exactly the same strings with far fewer Earley items.
EXPRESSIONS = r"""
star_expressions_$: star_expression_$ ("," star_expression_$)* ","?
star_expression_$: "*" bitwise_or_$ | expression_$
star_named_expressions_$: star_named_expression_$ ("," star_named_expression_$)* ","?
star_named_expression_$: "*" bitwise_or_$ | named_expression_$
named_expression_$: NAME_$ ":=" expression_$ | expression_$
expression_$: disjunction_$ | disjunction_$ "if"_sp disjunction_$ "else"_sp expression_$ | lambdef_$
yield_expr_$: "yield" | "yield" "from" expression_$ | "yield" star_expressions_$
disjunction_$: conjunction_$ ("or"_sp conjunction_$)*
conjunction_$: inversion_$ ("and"_sp inversion_$)*
inversion_$: "not" inversion_$ | comparison_$
comparison_$: bitwise_or_$ (comp_op_$ bitwise_or_$)*
comp_op_$: "==" | "!=" | "<" | "<=" | ">" | ">=" | "in"_sp | "not"_sp "in"_sp | "is"_sp | "is"_sp "not"
bitwise_or_$: factor_$ (binop_$ factor_$)*
binop_$: "|" | "^" | "&" | "<<" | ">>" | "+" | "-" | "*" | "/" | "//" | "%" | "@" | "**"
factor_$: "+" factor_$ | "-" factor_$ | "~" factor_$ | "await" primary_$ | primary_$
primary_$: primary_$ "." NAME_$
         | primary_$ "(" arguments_b? ")"
         | primary_$ "[" slices_b "]"
         | atom_$
atom_$: NAME_$ | "True" | "False" | "None" | "..." | NUMBER_$ | strings_$
      | "(" yield_expr_b ")"
      | "(" named_expression_b ")"
      | "(" tuple_body_b? ")"
      | "(" named_expression_b for_if_clauses_b ")"
      | "[" star_named_expressions_b? "]"
      | "[" named_expression_b for_if_clauses_b "]"
      | "{" star_named_expressions_b "}"
      | "{" named_expression_b for_if_clauses_b "}"
      | "{" dict_body_b? "}"
      | "{" dictcomp_body_b "}"
tuple_body_$: star_named_expression_$ "," star_named_expressions_$?
dict_body_$: kvpair_$ ("," kvpair_$)* ","?
dictcomp_body_$: expression_$ ":" expression_$ for_if_clauses_$
strings_$: STRING_$+
kvpair_$: expression_$ ":" expression_$ | "**" bitwise_or_$
for_if_clauses_$: for_if_clause_$+
for_if_clause_$: "async"_sp? "for"_sp star_targets_$ "in"_sp disjunction_$ ("if"_sp disjunction_$)*
slices_$: slice_$ ("," slice_$)* ","?
slice_$: expression_$? ":" expression_$? (":" expression_$?)? | named_expression_$ | "*" bitwise_or_$
arguments_$: args_$ ","? | named_expression_$ for_if_clauses_$
class_arguments_$: args_$ ","?
args_$: arg_pos_$ ("," arg_pos_$)* ("," arg_kw_or_star_$)* ("," arg_kw_or_dstar_$)*
      | arg_kw_or_star_$ ("," arg_kw_or_star_$)* ("," arg_kw_or_dstar_$)*
      | arg_kw_or_dstar_$ ("," arg_kw_or_dstar_$)*
arg_pos_$: named_expression_$ | "*" expression_$
arg_kw_or_star_$: NAME_$ "=" expression_$ | "*" expression_$
arg_kw_or_dstar_$: NAME_$ "=" expression_$ | "**" expression_$
lambdef_$: "lambda" lambda_params_$? ":" expression_$
lambda_params_$: lambda_plain_$ ("," lambda_star_etc_$)? ","? | lambda_star_etc_$ ","?
lambda_plain_$: NAME_$ ("," NAME_$)* ("," "/" ("," NAME_$)*)? ("," lambda_wd_$)*
              | (NAME_$ ",")* lambda_wd_$ ("," lambda_wd_$)* "," "/" ("," lambda_wd_$)*
              | lambda_wd_$ ("," lambda_wd_$)*
lambda_star_etc_$: "*" NAME_$ ("," lambda_md_$)* ("," "**" NAME_$)?
                 | "*" ("," lambda_md_$)+ ("," "**" NAME_$)?
                 | "**" NAME_$
lambda_wd_$: NAME_$ "=" expression_$
lambda_md_$: NAME_$ ("=" expression_$)?
star_targets_$: star_target_$ ("," star_target_$)* ","?
star_target_$: "*"? target_$
target_$: NAME_$ | primary_$ "." NAME_$ | primary_$ "[" slices_b "]"
        | "(" star_targets_b? ")" | "[" star_targets_b? "]"
del_targets_$: del_target_$ ("," del_target_$)* ","?
del_target_$: NAME_$ | primary_$ "." NAME_$ | primary_$ "[" slices_b "]"
            | "(" del_targets_b? ")" | "[" del_targets_b? "]"
single_target_$: NAME_$ | primary_$ "." NAME_$ | primary_$ "[" slices_b "]" | "(" single_target_b ")"
params_$: plain_params_$ ("," star_params_$)? ","? | star_params_$ ","?
plain_params_$: param_nd_$ ("," param_nd_$)* ("," "/" ("," param_nd_$)*)? ("," param_wd_$)*
              | (param_nd_$ ",")* param_wd_$ ("," param_wd_$)* "," "/" ("," param_wd_$)*
              | param_wd_$ ("," param_wd_$)*
star_params_$: "*" NAME_$ (":" (expression_$ | "*" bitwise_or_$))? ("," param_md_$)* ("," kwds_param_$)?
             | "*" ("," param_md_$)+ ("," kwds_param_$)?
             | kwds_param_$
param_nd_$: NAME_$ (":" expression_$)?
param_wd_$: NAME_$ (":" expression_$)? "=" expression_$
param_md_$: NAME_$ (":" expression_$)? ("=" expression_$)?
kwds_param_$: "**" NAME_$ (":" expression_$)?
type_params_$: "[" type_param_list_b "]"
type_param_list_$: type_param_$ ("," type_param_$)* ","?
type_param_$: NAME_$ (":" expression_$)? ("=" expression_$)? | "*" NAME_$ | "**" NAME_$
with_item_$: expression_$ ("as"_sp star_target_$)?
with_item_list_$: with_item_$ ("," with_item_$)* ","?
import_as_name_$: NAME_$ ("as"_sp NAME_$)?
import_as_names_$: import_as_name_$ ("," import_as_name_$)* ","?
pattern_$: or_pattern_$ ("as"_sp NAME_$)?
or_pattern_$: closed_pattern_$ ("|" closed_pattern_$)*
closed_pattern_$: literal_pattern_$ | NAME_$ | value_pattern_$ | class_pattern_$
                | "(" pattern_b ")"
                | "(" open_sequence_pattern_b? ")"
                | "[" maybe_sequence_pattern_b? "]"
                | "{" mapping_items_b? "}"
literal_pattern_$: "-"? NUMBER_$ (("+" | "-") IMAG_$)? | strings_$ | "None" | "True" | "False"
value_pattern_$: NAME_$ ("." NAME_$)+
class_pattern_$: NAME_$ ("." NAME_$)* "(" class_args_b? ")"
class_args_$: class_arg_$ ("," class_arg_$)* ","?
class_arg_$: pattern_$ | NAME_$ "=" pattern_$
open_sequence_pattern_$: maybe_star_pattern_$ "," maybe_sequence_pattern_$?
maybe_sequence_pattern_$: maybe_star_pattern_$ ("," maybe_star_pattern_$)* ","?
maybe_star_pattern_$: "*" NAME_$ | pattern_$
mapping_items_$: mapping_item_$ ("," mapping_item_$)* ","?
mapping_item_$: (literal_pattern_$ | value_pattern_$) ":" pattern_$ | "**" NAME_$
"""

# ---------------------------------------------------------------------------------------------
# Simple statements: one logical line, depth-independent (always the _l flavour).
SIMPLE_STATEMENTS = r"""
simple_stmts: simple_stmt (";" simple_stmt)* ";"?
simple_stmt: assignment | star_expressions_l | yield_expr_l
           | "return" star_expressions_l?
           | "raise" (expression_l ("from"_sp expression_l)?)?
           | "pass" | "break" | "continue"
           | "del" del_targets_l
           | "assert" expression_l ("," expression_l)?
           | "global" NAME_L ("," NAME_L)*
           | "nonlocal" NAME_L ("," NAME_L)*
           | "type" NAME_L type_params_l? "=" expression_l
           | import_name | import_from
assignment: single_target_l ":" expression_l ("=" annotated_rhs)?
          | (star_targets_l "=")+ annotated_rhs
          | single_target_l augassign annotated_rhs
annotated_rhs: yield_expr_l | star_expressions_l
augassign: "+=" | "-=" | "*=" | "@=" | "/=" | "%=" | "&=" | "|=" | "^=" | "<<=" | ">>=" | "**="
         | "//="
import_name: "import" dotted_as_name ("," dotted_as_name)*
dotted_as_name: dotted_name ("as"_sp NAME_L)?
dotted_name: NAME_L ("." NAME_L)*
import_from: "from" (DOTS_L? dotted_name | DOTS_L) "import"_sp import_targets
import_targets: "*"
              | "(" import_as_names_b ")"
              | import_as_name_l ("," import_as_name_l)*
with_items: "(" with_item_list_b ")" | with_item_l ("," with_item_l)*
subject: star_named_expression_l "," star_named_expressions_l? | named_expression_l
patterns: open_sequence_pattern_l | pattern_l
"""

# ---------------------------------------------------------------------------------------------
# Compound statements at block depth {d}; their bodies are at depth {n} = {d} + 1.
COMPOUND = r"""
stmt_{d}: simple_stmts | compound_{d}
compound_{d}: if_{d} | while_{d} | for_{d} | try_{d} | with_{d} | funcdef_{d} | classdef_{d}
            | decorated_{d} | match_{d}
if_{d}: "if" named_expression_l ":" suite_{d} elif_{d}* else_{d}?
elif_{d}: NL_{d} "elif" named_expression_l ":" suite_{d}
else_{d}: NL_{d} "else" ":" suite_{d}
while_{d}: "while" named_expression_l ":" suite_{d} else_{d}?
for_{d}: "async"? "for" star_targets_l "in"_sp star_expressions_l ":" suite_{d} else_{d}?
with_{d}: "async"? "with" with_items ":" suite_{d}
try_{d}: "try" ":" suite_{d} (handlers_{d} else_{d}? finally_{d}? | finally_{d})
handlers_{d}: except_{d}+ | except_star_{d}+
except_{d}: NL_{d} "except" (expression_l ("as"_sp NAME_L)?)? ":" suite_{d}
except_star_{d}: NL_{d} "except" "*" expression_l ("as"_sp NAME_L)? ":" suite_{d}
finally_{d}: NL_{d} "finally" ":" suite_{d}
funcdef_{d}: "async"? "def" NAME_L type_params_l? "(" params_b? ")" ("->" expression_l)? ":" suite_{d}
classdef_{d}: "class" NAME_L type_params_l? ("(" class_arguments_b? ")")? ":" suite_{d}
decorated_{d}: ("@" named_expression_l NL_{d})+ (funcdef_{d} | classdef_{d})
"""
#: Only where a deeper level exists: an indented body, and match (its cases sit one level deeper).
COMPOUND_WITH_BODY = r"""
suite_{d}: simple_stmts | (NL_{n} stmt_{n})+
match_{d}: "match" subject ":" (NL_{n} case_{n})+
case_{n}: "case"_sp patterns ("if"_sp named_expression_l)? ":" suite_{n}
"""
COMPOUND_DEEPEST = r"""
suite_{d}: simple_stmts
"""

START = r"""
start: FILE_HEAD? stmt_0 (NL_0 stmt_0)* FILE_END?
"""

# ---------------------------------------------------------------------------------------------
# Lexemes. Counted repetition ({0,N}) only where it is cheap: llguidance's lexer gets one state per
# count, and with Qwen's 151k-token vocabulary a mask walks the token trie through those states.
# Measured with Qwen masks (llguidance 1.7.6; 12 corpus files, 1500 tokens each; unbounded: total mask
# time 17.0 s, p50 0.35 ms): blank-line runs bounded as below cost nothing (16.0 s); one-line strings
# bounded at 5000 units: 20.0 s, p50 1.1 ms; whitespace after tokens and in brackets bounded at 256 as
# well: 24.2 s, p50 1.3 ms; triple-quoted strings bounded too: p50 ~15x (every docstring token is a
# new lexer state, so every mask walks the whole vocabulary); bounded numbers: `0x00` exceeds the
# 50,000-item limit (and `0[xX](_?[0-9a-fA-F]){1,100}` hit ParserTooComplex in json/decoder.py).
# Comments bounded at 2000 characters, each with its line end inside the lexeme: +10% total mask time
# over 8 files (10.8 -> 11.9 s), accepted. An earlier layout with bounded comments not tied to their
# line end failed with LexerTooComplex after 12 tokens of bisect.py.
LEXEMES = r"""
// Whitespace after a token on a logical line: spaces, tabs, form feeds, backslash continuations.
WS_L: /([ \t\f]|\\\r?\n)*/
// Whitespace after a token inside brackets: also newlines and comments (a comment takes its line
// end with it: at its bound that is what comes next, not a token Python would read as comment).
WS_B: /([ \t\f\r\n]|\\\r?\n|#[^\r\n\x00]{{0,2000}}\r?\n)*/
// Non-empty versions, after keywords that follow an expression (`x if y`, `a in b`, `import a as b`).
WS1_L: /([ \t\f]|\\\r?\n)+/
WS1_B: /([ \t\f\r\n]|\\\r?\n|#[^\r\n\x00]{{0,2000}}\r?\n)+/
// End of a logical line (optional comment), then blank or comment-only lines. NL_d adds 4*d spaces.
// Blank lines come in runs of at most 64 between comment lines; the comment lines themselves are
// not counted (a count there would give every token of a comment block a new lexer state).
BLANK_LINE: /[ \t\f]{{0,256}}\r?\n/
BLANK_LINES: BLANK_LINE{{0,64}}
COMMENT_LINE: /[ \t\f]{{0,256}}#[^\r\n\x00]{{0,2000}}\r?\n/
NL_BASE: /(#[^\r\n\x00]{{0,2000}})?\r?\n/ BLANK_LINES (COMMENT_LINE BLANK_LINES)*
// Blank lines, comments, shebang or encoding lines before the first statement.
FILE_HEAD: BLANK_LINE BLANK_LINES (COMMENT_LINE BLANK_LINES)* | BLANK_LINES (COMMENT_LINE BLANK_LINES)+
// The end of the file: a last line end and blank lines, then maybe spaces or a comment with no newline.
FILE_END: /#[^\r\n\x00]{{0,2000}}/ | NL_BASE /[ \t\f]{{0,256}}(#[^\r\n\x00]{{0,2000}})?/
DOTS_L: /\.{{1,64}}/ WS_L

KEYWORD: {keyword_alternatives}
// Identifier characters per PEP 3131, as of Unicode 14.0 (Python 3.11's tables; the regex engine's
// are newer). ZWNJ, ZWJ and the two katakana middle dots only joined XID_Continue in Unicode 15.1.
ID_START: /[_\p{{XID_Start}}&&\p{{Age=14.0}}]/
ID_CONTINUE: /[\p{{XID_Continue}}&&\p{{Age=14.0}}&&[^\x{{200C}}\x{{200D}}\x{{30FB}}\x{{FF65}}]]/
IDENT: ID_START ID_CONTINUE*
NAME_CORE: IDENT & ~KEYWORD
NAME_L: NAME_CORE WS_L
NAME_B: NAME_CORE WS_B

// Numbers: decimal (no leading zeros), hex, octal, binary, float, imaginary; `_` separators.
DIGITPART: /[0-9](_?[0-9])*/
DECINTEGER: /[1-9](_?[0-9])*|0(_?0)*/
HEXINTEGER: /0[xX](_?[0-9a-fA-F])+/
OCTINTEGER: /0[oO](_?[0-7])+/
BININTEGER: /0[bB](_?[01])+/
POINTFLOAT: DIGITPART? "." DIGITPART | DIGITPART "."
EXPONENTFLOAT: (DIGITPART | POINTFLOAT) /[eE][+-]?/ DIGITPART
FLOATNUMBER: POINTFLOAT | EXPONENTFLOAT
IMAGNUMBER: (FLOATNUMBER | DIGITPART) /[jJ]/
NUMBER_CORE: DECINTEGER | HEXINTEGER | OCTINTEGER | BININTEGER | FLOATNUMBER | IMAGNUMBER
NUMBER_L: NUMBER_CORE WS_L
NUMBER_B: NUMBER_CORE WS_B
// The imaginary part of a complex literal pattern (`case 1+2j:`).
IMAG_L: IMAGNUMBER WS_L
IMAG_B: IMAGNUMBER WS_B

// Strings: one terminal per kind (see string_terminals() in gen_python.py for the rules).
{string_terminals}
STRING_L: STRING_CORE WS_L
STRING_B: STRING_CORE WS_B
"""

HEADER = """\
// language: python
// description: Python 3 source file, code only: 4-space indentation, blocks nested up to {levels} deep
// GENERATED by grammar_lab/gen_python.py -- edit that file and run `python -m grammar_lab.gen_python`.
//
// Dialect: llguidance Lark. No %ignore: every terminal carries its trailing whitespace (_L on a
// logical line, _B inside brackets where newlines and comments are whitespace too), and NL_d is a
// line end plus blank/comment lines plus exactly 4*d spaces, so indentation is exact.
//
// Smallest program: one statement (`pass`, a docstring, `x = 1`, an import, ...). Empty output, and
// blank and comment lines alone (a shebang or encoding line included), are not a Python program here.
//
// Bounded lexemes (counted repetition; at the limit only what ends the run is allowed): a line end
// is followed by at most 64 blank lines before the next statement or comment line (NL_BASE, also at
// the start and end of the file), each of at most 256 spaces/tabs; a comment holds at most 2000
// characters after its `#` (then only its line end, or the end of the file, comes); `.` runs hold
// at most 64. The corpus never comes near these. The comment bound costs +10% total mask time
// (8 corpus files, Qwen masks, llguidance 1.7.6). Measured the same way and left unbounded because a
// count there costs more: one-line strings (+20% total mask time, p50 0.35 -> 1.1 ms), whitespace
// after a token or inside brackets (another +20%), triple-quoted strings (each docstring token
// becomes a new lexer state whose mask is a walk over the whole vocabulary: p50 15x), numbers (a
// bounded hex literal exceeded llguidance's 50,000 Earley items per mask at `0x00`), identifiers
// (the greedy lexer would split one long name into two). `max_tokens` on a lexeme is not used:
// llguidance ends the lexeme after N tokens even where its regex is incomplete (an unclosed string
// then counts as finished), and it disables
// rollback (vLLM's guidance backend calls it only for speculative decoding, not enabled here).
"""

_LITERAL = re.compile(r'"((?:[^"\\]|\\.)+)"(_sp)?')
_FLAVOURED = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)_\$")
_SYMBOL = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def terminal_name(literal: str, flavour: str, spaced: bool = False) -> str:
    """The terminal a template literal stands for, e.g. ``("if", "L") -> "KW_IF_L"``.

    ``spaced`` keywords (template ``"if"_sp``) must be followed by whitespace. They are the ones that
    follow an expression, where a NAME cannot come next: the greedy lexer would otherwise split
    ``x ifout`` into ``x if out``, because it only tries the lexemes the parser allows.
    """
    if spaced:
        if literal not in KEYWORDS and literal not in SOFT_KEYWORDS:
            raise ValueError(f"only keywords can be spaced, not {literal!r}")
        return f"KW_{literal.upper()}_SP_{flavour}"
    if literal in OPENERS:
        return PUNCTUATION[literal]
    if literal in PUNCTUATION:
        return f"{PUNCTUATION[literal]}_{flavour}"
    if literal in KEYWORDS or literal in SOFT_KEYWORDS:
        return f"KW_{literal.upper()}_{flavour}"
    raise ValueError(f"no terminal for literal {literal!r}; add it to PUNCTUATION or KEYWORDS")


def instantiate(template: str, flavour: str, depth: int | None = None) -> str:
    """Expand one template for a flavour ("L" or "B") and, for compound statements, a depth."""
    text = template.strip("\n")
    if depth is not None:
        text = text.replace("{d}", str(depth)).replace("{n}", str(depth + 1))
    text = _FLAVOURED.sub(lambda m: f"{m.group(1)}_{flavour if m.group(1).isupper() else flavour.lower()}", text)
    return _LITERAL.sub(lambda m: terminal_name(m.group(1), flavour, bool(m.group(2))), text)


def check_bracket_flavours(rules: dict[str, str]) -> None:
    """Fail if a rule puts an ``_L`` terminal between an opening bracket and its closer.

    Inside brackets every terminal must be ``_B`` (newlines are whitespace there). A template
    literal takes the flavour of its rule, so bracket contents must live in their own ``_b`` rule;
    this catches the easy mistake of writing ``"(" a_b "," b_b ")"`` in a line-flavoured rule.
    """
    closers = {f"{PUNCTUATION[c]}_{f}" for c in (")", "]", "}") for f in "LB"}
    openers = {PUNCTUATION[o] for o in OPENERS}
    for name, definition in rules.items():
        body = re.sub(r"/(?:[^/\\\n]|\\.)*/", " ", definition.split(":", 1)[1])
        depth = 0
        for sym in _SYMBOL.findall(body):
            if sym in openers:
                depth += 1
            elif sym in closers:
                depth = max(depth - 1, 0)
            elif depth and sym.endswith("_L"):
                raise ValueError(f"{name}: line-flavoured {sym} inside brackets")


def split_rules(text: str) -> dict[str, str]:
    """Map each rule or terminal name to its full definition (continuation lines included)."""
    rules: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        head = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", line)
        if head and not line[0].isspace():
            current = head.group(1)
            if current in rules:
                raise ValueError(f"duplicate definition of {current}")
            rules[current] = line
        elif current is not None:
            rules[current] += "\n" + line
    return rules


def reachable(rules: dict[str, str], root: str = "start") -> list[str]:
    """Names reachable from ``root``, in definition order (unused template instances are dropped)."""
    seen = {root}
    todo = [root]
    while todo:
        body = rules[todo.pop()].split(":", 1)[1]
        body = re.sub(r"/(?:[^/\\\n]|\\.)*/", " ", body)  # regex bodies are not references
        body = _LITERAL.sub(" ", body)
        for sym in _SYMBOL.findall(body):
            if sym in rules and sym not in seen:
                seen.add(sym)
                todo.append(sym)
    return [name for name in rules if name in seen]


def literal_terminals() -> str:
    """Definitions for every keyword/operator terminal, in both flavours (unused ones get pruned)."""
    lines = []
    for literal in [*KEYWORDS, *SOFT_KEYWORDS, *PUNCTUATION]:
        quoted = '"' + literal.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if literal in OPENERS:
            lines.append(f"{PUNCTUATION[literal]}: {quoted} WS_B")
            continue
        for flavour in ("L", "B"):
            lines.append(f"{terminal_name(literal, flavour)}: {quoted} WS_{flavour}")
            if literal in KEYWORDS or literal in SOFT_KEYWORDS:
                lines.append(f"{terminal_name(literal, flavour, spaced=True)}: {quoted} WS1_{flavour}")
    return "\n".join(lines)


def lexemes() -> str:
    """The fixed lexeme section, with the keyword list filled in."""
    keywords = " | ".join(f'"{kw}"' for kw in KEYWORDS)
    text = LEXEMES.replace("{keyword_alternatives}", keywords).replace("{{", "{").replace("}}", "}")
    return text.replace("{string_terminals}", string_terminals())


#: (terminal, prefixes, raw, bytes, f-string) for each kind of string literal.
STRING_KINDS = (
    ("STR_PLAIN", ["", "u", "U"], False, False, False),
    ("STR_RAW", ["r", "R"], True, False, False),
    ("STR_BYTES", ["b", "B"], False, True, False),
    ("STR_RAW_BYTES", [a + b for a in "bB" for b in "rR"] + [a + b for a in "rR" for b in "bB"], True, True, False),
    ("STR_F", ["f", "F"], False, False, True),
    ("STR_RAW_F", [a + b for a in "fF" for b in "rR"] + [a + b for a in "rR" for b in "fF"], True, False, True),
)

#: Escapes Python refuses when truncated or out of range (in non-raw str and f-strings).
_STR_ESCAPE = (
    r"\\([^xuUN\x00]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U000[0-9a-fA-F]{5}|U0010[0-9a-fA-F]{4}"
    r"|N\{[A-Za-z0-9 \-]+\})"
)
_BYTES_ESCAPE = r"\\([\x01-\x7F&&[^x]]|x[0-9a-fA-F]{2})"
#: (raw, bytes) -> what may follow a backslash. In raw literals: any character (bytes: ASCII).
_ESCAPES = {
    (False, False): _STR_ESCAPE,
    (False, True): _BYTES_ESCAPE,
    (True, False): r"\\[^\x00]",
    (True, True): r"\\[\x01-\x7F]",
}


def _string_regex(quote: str, triple: bool, raw: bool, ascii_only: bool, fstring: bool) -> str:
    """One string literal body, delimiters included, as a Rust regex.

    * A backslash always takes the next character with it (also in raw strings, where it stays in the
      value): that is how Python's tokenizer finds the closing quote. In non-raw literals the escapes
      Python rejects (truncated ``\\x``/``\\u``/``\\U``, ``\\N`` without a name) are left out.
    * Triple-quoted bodies are runs of at most two quotes followed by something else, so the first
      unescaped triple quote ends the literal; single-quoted bodies have no line breaks.
    * bytes hold ASCII only; nothing holds a NUL byte (Python refuses them anywhere in source).
    * f-strings: literal braces are doubled and every single ``{`` opens a replacement field that
      must close, with one level of nested fields for format specs (``{x:>{width}}``). The field's
      expression is not parsed and may not contain the string's own quote character.
    """
    stop = quote + "\\\\\\x00" + ("" if triple else "\\r\\n")
    if fstring:
        stop += "{}"
    char = f"[\\x01-\\x7F&&[^{stop}]]" if ascii_only else f"[^{stop}]"
    units = [char, _ESCAPES[raw, ascii_only]]
    if fstring:
        inner = f"[^{{}}\\\\{quote}\\x00" + ("" if triple else "\\r\\n") + "]"
        field = rf"\{{({inner}|\{{{inner}*\}})+\}}"
        units += [r"\{\{", r"\}\}", field]
    unit = "(" + "|".join(units) + ")"
    if triple:
        unit = f"({quote}{{0,2}}{unit})"
    delimiter = quote * 3 if triple else quote
    return f"{delimiter}{unit}*{delimiter}"


def string_terminals() -> str:
    """STRING_CORE and one terminal per kind of string literal (prefix, quotes, escapes)."""
    lines = []
    for name, prefixes, raw, is_bytes, fstring in STRING_KINDS:
        prefix = "|".join(p for p in prefixes if p)
        prefix_rx = f"({prefix})" + ("?" if "" in prefixes else "")
        bodies = [_string_regex(quote, triple, raw, is_bytes, fstring) for triple in (False, True) for quote in "'\""]
        lines.append(f"{name}: /{prefix_rx}({'|'.join(bodies)})/")
    lines.append("STRING_CORE: " + " | ".join(kind[0] for kind in STRING_KINDS))
    return "\n".join(lines)


def newline_terminals() -> str:
    """``NL_d``: a line end plus exactly ``4*d`` spaces of indentation for the next statement."""
    lines = ["NL_0: NL_BASE"]
    lines += [f'NL_{d}: NL_BASE "{INDENT * d}"' for d in range(1, MAX_DEPTH + 1)]
    return "\n".join(lines)


def sections() -> Iterable[str]:
    """All grammar text before pruning, in output order."""
    yield instantiate(START, "L")
    for depth in range(MAX_DEPTH + 1):
        yield instantiate(COMPOUND, "L", depth)
        body = COMPOUND_WITH_BODY if depth < MAX_DEPTH else COMPOUND_DEEPEST
        yield instantiate(body, "L", depth)
    yield instantiate(SIMPLE_STATEMENTS, "L")
    yield instantiate(EXPRESSIONS, "L")
    yield instantiate(EXPRESSIONS, "B")
    yield newline_terminals()
    yield lexemes()
    yield literal_terminals()


def generate() -> str:
    """The complete python.lark text."""
    rules = split_rules("\n".join(sections()))
    # match_{MAX_DEPTH} has no template at the deepest level: drop it from compound_{MAX_DEPTH}.
    deepest = f"compound_{MAX_DEPTH}"
    rules[deepest] = rules[deepest].replace(f" | match_{MAX_DEPTH}", "")
    kept = reachable(rules)
    check_bracket_flavours({name: rules[name] for name in kept})
    header = HEADER.format(levels=MAX_DEPTH)
    return header + "\n" + "\n".join(rules[name] for name in kept) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write python.lark, or with ``--check`` exit 1 when the committed file is out of date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed file")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date; run python -m grammar_lab.gen_python", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
