"""go.lark accepts ordinary Go and keeps out what ``gofmt -e`` rejects.

The snippets below, and the checks every code grammar gets (test_languages.py: gofmt agrees with the
snippets, the corpus accept rate, random walks, mask replay), plus what only Go needs. Verdicts use
llguidance's byte-level tokenizer (same verdict as Qwen's, exact offsets).
"""

from __future__ import annotations

import random

import grammars
from grammar_lab import parsers
from grammars.validation import check_text

from .markers import needs_gofmt

GO = grammars.load("go")


def _file(body: str) -> str:
    return "package p\n\n" + body


VALID = {
    "minimal": "package main\n",
    "no_trailing_newline": "package main",
    "comments_everywhere": "// Package p does things.\n/* block */\npackage p // trailing\n\n/* a\n b */\n"
    "func f() { // c\n\tx := 1 /* inline */\n\t_ = x\n}\n// end",
    "imports": _file('import "fmt"\nimport (\n\t"os"\n\tstr "strings"\n\t. "math"\n\t_ "embed"\n)\n'),
    "const_iota_group": _file("const (\n\tA = iota\n\tB\n\tC, D = 1, 2\n\tE int = 3\n)\n"),
    "var_forms": _file("var x int\nvar y = 2\nvar z, w float64 = 1, 2\nvar (\n\ta []int\n\tb = map[string]int{}\n)\n"),
    "type_decls": _file("type A int\ntype B = A\ntype C [4]byte\ntype (\n\tD struct{}\n\tE interface{}\n)\n"),
    "struct_tags_embedded": _file(
        'type T struct {\n\tio.Reader\n\t*Base\n\tList[int]\n\ta, b int `json:"a"`\n'
        '\tc string "plain tag"\n\td struct{ x int }\n}\n'
    ),
    "interface_methods_and_unions": _file(
        "type I interface {\n\tfmt.Stringer\n\tM(x int) (string, error)\n\t~int | ~int64 | float64\n}\n"
    ),
    "generic_func": _file(
        "func Map[T, U any](xs []T, f func(T) U) []U {\n\tout := make([]U, 0, len(xs))\n"
        "\tfor _, x := range xs {\n\t\tout = append(out, f(x))\n\t}\n\treturn out\n}\n"
    ),
    "generic_type_and_method": _file(
        "type List[T any] struct {\n\tnext *List[T]\n\tval  T\n}\n\n"
        "func (l *List[T]) Push(v T) { l.next = &List[T]{val: v} }\n\n"
        "type Pair[K comparable, V any] struct{ k K; v V }\n"
    ),
    "constraints": _file(
        "type Number interface {\n\t~int | ~int8 | ~float64\n}\n\n"
        "func Sum[S ~[]E, E Number](s S) (t E) {\n\tfor _, v := range s {\n\t\tt += v\n\t}\n\treturn\n}\n\n"
        "func Max[T interface{ ~int | ~string }](a, b T) T { return a }\n"
    ),
    "instantiation": _file('var f = Map[int, string]\nvar l = List[int]{}\nvar p = Pair[string, int]{k: "a"}\n'),
    "composite_literals": _file(
        'var x = []Point{{1, 2}, {X: 3}}\nvar m = map[string][]int{"a": {1}, "b": nil}\n'
        'var a = [...]string{2: "b", 0: "a"}\nvar s = struct{ a int }{a: 1}\nvar q = &pkg.T{\n\tA: 1,\n}\n'
    ),
    "composite_literal_in_if_needs_parens": _file(
        "func f(x T) {\n\tif x == (T{}) {\n\t}\n\tfor _, v := range []int{1, 2} {\n\t\t_ = v\n\t}\n}\n"
    ),
    "named_variadic": _file("func f(format string, args ...interface{}) {\n\tg(args...)\n}\n"),
    "unnamed_params": _file("type F func(int, string) (bool, error)\nfunc g(...int) {}\n"),
    "multiline_params": _file("func f(\n\ta int,\n\tb string,\n) (\n\tn int,\n\terr error,\n) {\n\treturn\n}\n"),
    "labels_goto": _file(
        "func f() {\nouter:\n\tfor i := 0; i < 3; i++ {\n\t\tfor {\n\t\t\tcontinue outer\n\t\t}\n\t}\n"
        "\tgoto end\nend:\n}\n"
    ),
    "select_and_channels": _file(
        "func f(c chan int, r <-chan string, s chan<- bool) {\n\tselect {\n\tcase v := <-c:\n\t\t_ = v\n"
        "\tcase x, ok := <-r:\n\t\t_, _ = x, ok\n\tcase s <- true:\n\tcase <-time.After(1):\n\tdefault:\n\t}\n"
        "\tc <- 1\n\tgo func() { c <- 2 }()\n\tdefer close(c)\n}\n"
    ),
    "switches": _file(
        "func f(x interface{}) {\n\tswitch v := x.(type) {\n\tcase int, *int:\n\t\t_ = v\n"
        "\tcase nil:\n\tdefault:\n\t}\n"
        "\tswitch y := 1; {\n\tcase y > 0:\n\t\tfallthrough\n\tcase y < 0:\n\t}\n"
        "\tswitch x.(type) {\n\t}\n\tswitch n := 2; n {\n\tcase 1, 2:\n\t\tbreak\n\t}\n}\n"
    ),
    "for_forms": _file(
        "func f() {\n\tfor {\n\t\tbreak\n\t}\n\tfor x < 3 {\n\t}\n\tfor i := 0; i < 10; i++ {\n\t}\n"
        "\tfor ; ; {\n\t}\n\tfor range ch {\n\t}\n\tfor k := range m {\n\t\t_ = k\n\t}\n"
        "\tfor a.b, c[0] = range s {\n\t}\n}\n"
    ),
    "if_else_chain": _file(
        "func f() int {\n\tif err := g(); err != nil {\n\t\treturn 1\n\t} else if x {\n\t\treturn 2\n\t} else {\n"
        "\t\treturn 3\n\t}\n}\n"
    ),
    "numbers": _file(
        "const (\n\ta = 0x_FF + 0o17 + 017 + 0b1010 + 1_000_000 + 0\n"
        "\tb = 1.5e-3 + .5 + 1. + 01.5 + 0x1p-2 + 0x1.8p+3 + 1E10\n"
        "\tc = 3i + 1.5i + 0i + 0x10i + 089i\n)\n"
    ),
    "runes_and_strings": _file(
        "var r = []rune{'a', '\\n', '\\'', '\\x41', '\\101', '\\u00e9', '\\U0001F600', 'é'}\n"
        'var s = "tab\\t quote\\" \\u00e9" + `raw\nstring with "quotes" \\n`\n'
    ),
    "method_expressions_and_conversions": _file(
        'var f = (*T).Method\nvar g = T.Method\nvar b = []byte("x")\nvar p = (*int)(nil)\n'
        "var i = interface{}(1)\nvar h = func(int) int(nil)\nvar c = (<-chan int)(nil)\n"
    ),
    "slices_and_indexing": _file(
        "func f() {\n\t_ = a[1:2]\n\t_ = a[:]\n\t_ = a[1:2:3]\n\t_ = a[i][j]\n\t_ = m[k].f\n}\n"
    ),
    "operators": _file(
        "func f() {\n\tx += 1\n\tx &^= y\n\tx <<= 2\n\ty = a &^ b | c ^ d &&e || !f\n\tz := -a * *p / b % c << 1 >> 2\n"
        "\tx++\n\ty--\n\tv := <-ch\n\tq := &T{}\n\t_, _, _ = v, q, z\n}\n"
    ),
    "func_literal_and_closures": _file(
        "var f = func(a, b int) (int, error) {\n\treturn a + b, nil\n}\n\n"
        "func g() func() int {\n\treturn func() int { return 1 }\n}\n"
    ),
    "function_without_body": _file("func asm(x int) int\n\nfunc noResult()\n"),
    "empty_statements": _file("func f() {\n\t;\n\tx := 1;;\n\t_ = x\n}\n"),
    "label_at_block_end": _file("func f() {\n\tgoto done\ndone:\n}\n"),
    "make_new_with_types": _file(
        "func f() {\n\tm := make(map[string][]int, 10)\n\tc := make(chan struct{})\n"
        "\tp := new(int)\n\t_, _, _ = m, c, p\n}\n"
    ),
    "crlf_line_endings": "package p\r\n\r\nfunc f() {\r\n\tx := 1\r\n\t_ = x\r\n}\r\n",
    "one_line_block_and_semicolons": _file("func f() { a := 1; b := 2; _ = a + b }\n"),
    "unicode_identifiers": _file("var café, π = 1, 3.14\n"),
}

INVALID = {
    "keyword_as_identifier": _file("var func = 1\n"),
    "keyword_as_field": _file("func f() { x.type = 1 }\n"),
    "keyword_glued_after_package": "packagemain\n",
    "else_on_new_line": _file("func f() {\n\tif x {\n\t}\n\telse {\n\t}\n}\n"),
    "missing_trailing_comma": _file("var x = []int{\n\t1,\n\t2\n}\n"),
    "call_missing_trailing_comma": _file("func f() {\n\tg(\n\t\t1\n\t)\n}\n"),
    "brace_on_next_line": _file("func f()\n{\n}\n"),
    "composite_literal_in_if_header": _file("func f(x T) {\n\tif x == T{} {\n\t}\n}\n"),
    "two_statements_one_line": _file("func f() {\n\tx := 1 y := 2\n}\n"),
    "unterminated_string": _file('var s = "abc\n'),
    "unterminated_raw_string": _file("var s = `abc\n"),
    "unterminated_comment": _file("/* never closed\nfunc f() {}\n"),
    "unterminated_rune": _file("var r = 'a\n"),
    "two_char_rune": _file("var r = 'ab'\n"),
    "octal_digit_8": _file("var x = 08\n"),
    "trailing_underscore": _file("var x = 1_\n"),
    "surrogate_escape": _file('var s = "\\ud800"\n'),
    "markdown_fence": "```go\npackage main\n```\n",
    "prose_before_code": "Here is the code:\npackage main\n",
    "missing_package": "func main() {}\n",
    "import_after_decl": _file('var x = 1\nimport "fmt"\n'),
    "mixed_named_unnamed_params": _file("func f(a int, string) {}\n"),
    "short_var_decl_of_field": _file("func f() {\n\tx.y := 1\n}\n"),
    "go_without_call": _file("func f() {\n\tgo f\n}\n"),
    "const_without_value": _file("const c int\n"),
    "var_without_type_or_value": _file("var v\n"),
    "method_with_type_params": _file("func (r R) M[T any]() {}\n"),
    "statement_at_top_level": _file("x := 1\n"),
    "three_index_slice_without_max": _file("func f() { _ = a[1:2:] }\n"),
    "invalid_import_path": _file('import "a b"\n'),
}

#: gofmt parses these, the compiler rejects them; the grammar keeps them out too (stricter is sound).
NOT_GO = {
    "variadic_not_last": _file("func f(a ...int, b int) {}\n"),
    "ellipsis_array_as_type": _file("var x [...]int\n"),
    "type_switch_guard_outside_switch": _file("func f() { y := x.(type) }\n"),
    "receive_as_select_case_call": _file("func f() {\n\tselect {\n\tcase g():\n\t}\n}\n"),
}


def test_newline_after_identifier_ends_the_statement() -> None:
    """Go's automatic semicolon: `a\\n.b()` is two statements, and `.b()` cannot start one."""
    verdict = check_text(GO, _file("func f() {\n\tx := a\n\t\t.b()\n}\n"))
    assert not verdict.accepted
    assert verdict.line == 5  # the `.b()` line, counted from `package`
    assert check_text(GO, _file("func f() {\n\tx := a.\n\t\tb()\n}\n")).accepted


def _mutants(sources: list[str], count: int, seed: int) -> list[str]:
    """Small random edits of valid snippets: deletions, and insertions of pieces that matter to Go."""
    rng = random.Random(seed)
    pieces = ["(", ")", "[", "]", "{", "}", ":", ",", "=", ".", "\n", " ", ";", "*", "<-", "...", "~", "|"]
    pieces += ["'", '"', "`", "/*", "//", "func ", "type ", "range ", "chan ", "if ", "else ", "case ", "T{}", "0x"]
    mutants = []
    for _ in range(count):
        text = rng.choice(sources)
        i = rng.randrange(len(text) + 1)
        if rng.random() < 0.5:
            mutants.append(text[:i] + text[i + 1 :])
        else:
            mutants.append(text[:i] + rng.choice(pieces) + text[i:])
    return mutants


@needs_gofmt
def test_never_accepts_what_gofmt_rejects_on_random_edits() -> None:
    """Differential soundness check against gofmt on mutants of the valid snippets (seeded)."""
    mutants = _mutants(list(VALID.values()), 200, seed=3)
    verdicts = parsers.check("go", mutants)
    unsound = [
        text for text, v in zip(mutants, verdicts, strict=True) if v is not None and check_text(GO, text).accepted
    ]
    assert unsound == []
    assert sum(v is None for v in verdicts) > 20  # some mutants are still Go, and those were checked too
