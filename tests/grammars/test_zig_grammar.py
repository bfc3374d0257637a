"""zig.lark accepts ordinary Zig 0.17 and keeps out what the Zig compiler's parser rejects.

The snippets below, and the checks every code grammar gets (test_languages.py: the corpus accept rate,
random walks, mask replay), plus what only Zig needs. Verdicts use llguidance's byte-level tokenizer
(same verdict as Qwen's, exact offsets). Every VALID snippet is first checked with ``zig fmt`` and every
INVALID one must be rejected by ``zig ast-check``, so the snippets cannot drift from the language.

Soundness is judged by ``zig fmt`` (the parser alone). ``zig ast-check`` also runs AstGen, which
rejects unused locals, undeclared names, shadowing and the like: properties of a whole program that no
context-free grammar can enforce, so random walks are only held to the parser.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import grammars
from grammar_lab import parsers, toolchains
from grammars.validation import check_text

from .markers import needs_zig

ZIG = grammars.load("zig")


VALID = {
    "import_and_const": 'const std = @import("std");\npub const x: u32 = 1;\n',
    "no_trailing_newline": "pub const x = 1;",
    "container_doc_and_doc_comments": "//! Module doc.\n//! Second line.\n\n/// A value.\n/// More.\n"
    "pub const a = 1;\n// plain\n//// four slashes are a plain comment\n",
    "struct_fields_and_decls": "const S = struct {\n    //! inside\n    /// doc on a field\n    x: u32 = 0,\n"
    "    y: ?*const u8 align(8) = null,\n\n    pub fn get(self: S) u32 {\n        return self.x;\n    }\n};\n",
    "packed_extern_opaque": "pub const P = packed struct(u8) { a: u4, b: u4 };\n"
    "pub const E = extern struct { x: c_int };\npub const O = opaque {};\n"
    "pub const U = extern union { a: u8, b: i8 };\n",
    "enum_and_tagged_union": "pub const Color = enum(u8) { red, green, _ };\n"
    "pub const V = union(enum) {\n    int: i64,\n    float: f64,\n    none,\n};\n",
    "tuple_struct": "pub const T = struct { u8, u16 };\n",
    "fn_params": "pub fn f(comptime T: type, noalias p: *T, x: anytype, _: u8) callconv(.c) void {\n"
    "    _ = p;\n    _ = x;\n}\n",
    "extern_fn_and_varargs": 'extern "c" fn printf(fmt: [*:0]const u8, ...) c_int;\n'
    "pub extern fn g(a: u8) void;\nexport fn h() void {}\ninline fn i() void {}\n",
    "param_doc_comments": "pub fn f(\n    /// first\n    a: u8,\n    /// second\n    b: u8,\n) u8 {\n"
    "    return a + b;\n}\n",
    "error_sets_and_unions": "pub const E = error{\n    /// doc\n    A,\n    B,\n};\n"
    "pub fn f(x: bool) E!u8 {\n    if (x) return error.A;\n    return 1;\n}\n"
    "pub const Any = anyerror!void;\npub const M = E || error{C};\n",
    "optionals_orelse_catch_try": "pub fn f(a: ?u8, b: anyerror!u8) !u8 {\n    const x = a orelse return 0;\n"
    "    const y = b catch |err| return err;\n    const z = try b;\n    return x + y + z + (a.? * 2);\n}\n",
    "pointers_slices_sentinels": "pub const A = [*:0]const u8;\npub const B = []align(4) u8;\npub const C = [:0]u8;\n"
    "pub const D = [4:0]u8;\npub const F = [*c]u8;\npub const G = *allowzero volatile u32;\n"
    "pub fn s(buf: []u8) []u8 {\n    return buf[0..2];\n}\n",
    "slices_and_ranges": "pub fn f(a: []const u8, n: usize) void {\n    _ = a[1..n];\n    _ = a[0..];\n"
    "    _ = a[n + 1 ..];\n    _ = a[0..n :0];\n    for (0..n) |i| _ = i;\n}\n",
    "comptime_and_inline": "pub fn f(comptime n: usize) usize {\n    comptime var i = 0;\n    inline for (0..n) |_| {\n"
    "        i += 1;\n    }\n    const x = comptime n * 2;\n    return i + x;\n}\ncomptime {\n    _ = f;\n}\n",
    "labeled_blocks_and_loops": "pub fn f() u8 {\n    const v = blk: {\n        break :blk 1;\n    };\n"
    "    outer: while (true) : (v += 0) {\n        for (0..3) |_| continue :outer;\n    }\n    return v;\n}\n",
    "range_starts_ending_in_an_integer": "pub fn f(x: []u8, a: ?usize, n: usize) void {\n"
    "    _ = x[if (a) |i| i + 1 else 0..];\n    _ = x[if (a) |i| i else 0..n];\n    _ = x[-%1..];\n"
    "    _ = x[a orelse 0..];\n    _ = x[comptime 1..];\n    for (n + 1..n) |_| {}\n"
    "    for (if (a) |i| i else 0..n) |_| {}\n    switch (n) {\n        n + 1...9 => {},\n        else => {},\n"
    "    }\n}\n",
    "concatenation_after_initializers": "const a = [_]u8{ 1, 2 } ++ [_]u8{3};\nconst b = .{1} ++ .{2};\n"
    "const c = S{} ++ x;\nconst d = .{Elem{}} ++ .{Elem{}};\n",
    "for_multiple_captures": "pub fn f(a: []u8, b: []const u8) void {\n    for (a, b, 0..) |*x, y, i| {\n"
    "        x.* = y + @as(u8, @intCast(i));\n    }\n}\n",
    "switch_ranges_captures": "pub fn f(x: u8, u: U) u8 {\n    return switch (x) {\n        0 => 1,\n"
    "        1...9, 20 => |v| v,\n        'a'...'z' => 2,\n        else => switch (u) {\n"
    "            .a => |p| p,\n            inline else => |_, tag| @intFromEnum(tag),\n        },\n    };\n}\n",
    "labeled_switch": "pub fn f(x: u8) void {\n    sw: switch (x) {\n        0 => continue :sw 1,\n"
    "        else => {},\n    }\n}\n",
    "defer_errdefer": "pub fn f(a: std.mem.Allocator) !void {\n    const p = try a.alloc(u8, 1);\n"
    "    defer a.free(p);\n    errdefer a.free(p);\n    errdefer {\n        a.free(p);\n    }\n}\n",
    "if_else_chains": "pub fn f(a: ?u8) u8 {\n    if (a) |v| {\n        return v;\n    } else if (a == null) {\n"
    "        return 1;\n    } else return 2;\n}\n",
    "while_optional_capture": "pub fn f(it: *Iter) void {\n    while (it.next()) |x| {\n        _ = x;\n"
    "    } else {}\n}\n",
    "builtins": "pub fn f(x: u32) u8 {\n    return @as(u8, @truncate(@min(x, 255) + @sizeOf(@TypeOf(x))));\n}\n",
    "multiline_string": 'pub const s =\n    \\\\first line\n    \\\\second "line"\n;\n',
    "char_and_string_escapes": "pub const c = '\\n';\npub const d = '\\u{1F600}';\npub const e = 'é';\n"
    'pub const s = "tab\\t\\x41\\u{263A}\\"q\\"";\n',
    "numbers": "pub const a = 0xFF_FF + 0o777 + 0b1010_1010 + 1_000_000;\npub const b = 1.5e-3 + 0x1.8p3 + 2.0;\n"
    "pub const c = 1e10;\n",
    "anonymous_literals": "pub fn f() void {\n    const p: Point = .{ .x = 1, .y = 2 };\n"
    '    const t = .{ 1, true, "s" };\n'
    "    const e: Color = .red;\n    _ = .{ p, t, e };\n}\n",
    "test_declarations": 'test "adds" {\n    try std.testing.expect(1 + 1 == 2);\n}\ntest f {}\ntest {}\n',
    "destructuring": "pub fn f() void {\n    const a, var b = .{ 1, 2 };\n    b += a;\n}\n",
    "asm_volatile": 'pub fn f() void {\n    asm volatile ("nop" ::: .{ .memory = true });\n}\n',
    "threadlocal_and_linksection": 'threadlocal var t: u32 = 0;\nexport var v: u8 linksection(".data") = 0;\n',
    "ptr_deref_and_address": "pub fn f(p: *u8) void {\n    p.* = 1;\n    const q = &p.*;\n    _ = q;\n}\n",
    "licence_header_then_module_docs": "// Copyright 2024 Someone\n// SPDX-License-Identifier: MIT\n\n"
    "//! Module docs.\n\nconst x = 1;\n",
    "licence_header_then_doc_comment": "// Licensed under the MIT licence.\n\n/// A value.\npub const x = 1;\n",
    "try_inside_prefix_runs": "fn f() !void {\n    try t(!try g());\n    _ = !tryit;\n    _ = try !x;\n"
    "    _ = try try h();\n}\n",
    "doc_comment_first_bytes": "/// doc\nconst x = 1;\n",
    "comment_at_eof": "pub const x = 1;\n// end",
    "crlf_line_ends": "pub const a = 1;\r\npub const b = 2;\r\n",
}

INVALID = {
    "keyword_as_name": "const fn = 1;\n",
    "keyword_glued_to_name": "pubconst x = 1;\n",
    "unterminated_string": 'const s = "abc;\n',
    "unterminated_char": "const c = 'a;\n",
    "markdown_fence": "```zig\nconst x = 1;\n```\n",
    "prose_before_code": "Here is the code:\nconst x = 1;\n",
    "lopsided_operator_space": "const x = a +b;\n",
    "and_and": "const x = a && b;\n",
    "chained_comparison": "const x = a == b == c;\n",
    "doc_comment_on_same_line": "const S = struct { x: u8, /// doc\n y: u8 };\n",
    "doc_comment_on_test": "/// doc\ntest {}\n",
    "doc_comment_at_end": "const x = 1;\n/// dangling\n",
    "decl_between_fields": "x: u8,\nconst a = 1;\ny: u8,\n",
    "local_var_without_init": "fn f() void {\n    var x: u8;\n}\n",
    "missing_semicolon": "const x = 1\n",
    "tab_after_comment": "// comment\t\nconst x = 1;\n",
    "lone_cr_after_comment": "// comment\r const x = 1;\n",
    "tab_in_string": 'const s = "a\tb";\n',
    "uppercase_hex_prefix": "const x = 0XFF;\n",
    "leading_zero": "const x = 007;\n",
    "usingnamespace": 'usingnamespace @import("std");\n',
    "async_call": "fn f() void {\n    _ = async g();\n}\n",
    "c_style_struct": "struct Foo {};\n",
    "unknown_builtin": "const x = @notABuiltin(1);\n",
    "integer_glued_to_dots": "fn f(a: []u8) void {\n    _ = a[0...x];\n}\n",
    "number_then_else": "const x = if (a) 1else 2;\n",
    "array_repetition": "const buf = [_]u8{0} ** 64;\n",  # Zig 0.17 has no `**` token any more
    "array_repetition_of_anonymous_list": "const a = .{Elem{}} ** 10;\n",
    "range_start_glued_to_three_dots": "fn f(x: []u8) void {\n    _ = x[if (c) 1 else 0...];\n}\n",
    "switch_range_with_two_dots": "fn f(x: u8) void {\n    switch (x) {\n        x + 1..5 => {},\n    }\n}\n",
    "block_then_suffix_statement": "fn f() void {\n    {}.x = 1;\n}\n",
}

#: Zig's parser takes these, the grammar does not: `zig fmt` never writes them (documented choices).
NOT_FORMATTED = {
    "tight_binary_operator": "const x = a+b;\n",
}


def _zig_verdicts(texts: list[str]) -> list[str | None]:
    """`zig ast-check`: the parser plus AstGen, which also refuses number forms like `0XFF` or `007`
    and unknown builtins. The grammar rejects those too, so the compiler's front end judges them."""
    root = toolchains.ziglang_dir()
    assert root is not None
    verdicts: list[str | None] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(texts):
            path = Path(tmp) / f"{index}.zig"
            path.write_text(text, encoding="utf-8")
            result = subprocess.run([str(root / "zig"), "ast-check", str(path)], capture_output=True, text=True)
            verdicts.append(None if result.returncode == 0 else result.stderr or "rejected")
    return verdicts


def _zig_fmt(texts: list[str]) -> list[str | None]:
    """The parser alone (`zig fmt --stdin`, the soundness judge of grammar_lab.parsers)."""
    return parsers.check("zig", texts)


@needs_zig
def test_snippets_agree_with_zig() -> None:
    """VALID snippets parse (zig fmt) and INVALID ones are rejected by ast-check, as the grammar says."""
    valid = _zig_fmt(list(VALID.values()))
    assert {name: v for name, v in zip(VALID, valid, strict=True) if v is not None} == {}
    invalid = _zig_verdicts(list(INVALID.values()))
    assert [name for name, v in zip(INVALID, invalid, strict=True) if v is None] == []
    assert _zig_fmt(list(NOT_FORMATTED.values())) == [None] * len(NOT_FORMATTED)


def test_statement_starting_with_e_after_a_block() -> None:
    """`else` carries no leading space, so `if (c) {}` may be followed by a statement like `err = 1;`."""
    assert check_text(
        ZIG, "fn f() void {\n    if (c) {}\n    err = 1;\n    if (c) return else elsewhere();\n}\n"
    ).accepted
