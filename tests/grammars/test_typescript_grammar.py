"""typescript.lark accepts ordinary TypeScript and keeps out what the TypeScript parser rejects.

The snippets below, and the checks every code grammar gets (test_languages.py: the TypeScript compiler's
parser agrees with the snippets, the corpus accept rate, random walks, mask replay), plus what only
TypeScript needs. Verdicts use llguidance's byte-level tokenizer (same verdict as Qwen's, exact
offsets); the mask checks use the Qwen tokenizer, which is what vLLM feeds the matcher.
"""

from __future__ import annotations

import pytest

import grammars
from grammar_lab.masks import dead_ends_after, replay_with_masks
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer
from grammars.validation import check_text

from .markers import needs_qwen

TS = grammars.load("typescript")


VALID = {
    "comments_around_code": "// line\n/* block\n   over lines */\n/** JSDoc */\nexport {}\n// end\n",
    "no_trailing_newline": "let x = 1",
    "semicolons": "const a = 1;\nlet b: number = 2;\nvar c;\n",
    "asi_no_semicolons": "const a = 1\nlet b = a\nfoo()\nb = a + 1\n",
    "asi_before_brace_and_eof": "function f() { return 1 }\nif (x) { y() } else z()",
    "statement_continues_on_next_line": "const y = items\n  .map((x) => x * 2)\n  .filter(Boolean)\n"
    "const z = a\n  ? b\n  : c\n",
    "call_on_next_line_is_a_call": "const v = f\n(1)\n",
    "negation_starts_the_next_statement": "let x = y\n!z\n",
    "return_on_its_own_line": "function f() {\n  return\n}\n",
    "unions_intersections": "type A = string | number\ntype B =\n  | { kind: 'a' }\n  | { kind: 'b' }\n"
    "type C = A & B\n",
    "conditional_infer": "type Elem<T> = T extends ReadonlyArray<infer U> ? U : never\n"
    "type Fn<T> = T extends (...args: infer P) => infer R ? [P, R] : never\n",
    "mapped_types": "type P<T> = { readonly [K in keyof T]?: T[K] }\ntype M<T> = { -readonly [K in keyof T]-?: T[K] }\n"
    "type R<T> = { [K in keyof T as `get${Capitalize<K & string>}`]: () => T[K] }\n",
    "indexed_keyof_typeof": "const o = { a: 1 }\ntype K = keyof typeof o\ntype V = (typeof o)['a']\n"
    "type U = unique symbol\n",
    "template_literal_types": "type Ev = `on${string}`\ntype Id = `${number}-${'a' | 'b'}`\n",
    "tuples": "type T = [a: string, b?: number, ...rest: boolean[]]\ntype U = readonly [string, number?]\n",
    "generics_defaults_constraints": "function f<T extends object = {}, const U = T>(x: T, y?: U): T {\n"
    "  return x\n}\nclass Box<in out T> {}\n",
    "interfaces": "interface A<T> extends B, C<T> {\n  readonly x: number\n  y?: string;\n  m(a: T): void,\n"
    "  new (s: string): A<T>\n  (n: number): string\n  [key: string]: unknown\n  get z(): number\n}\n",
    "enums": "enum E { A, B = 2, 'c' = 3, }\nconst enum F { X = 1 << 2 }\ndeclare enum G { Y }\n",
    "namespaces_declare": "namespace A.B {\n  export const x = 1\n}\n"
    "declare module 'm' {\n  export function f(): void\n}\n"
    "declare global {\n  interface Window { x: number }\n}\n"
    "declare const v: string\ndeclare function g(a: number): void\n",
    "abstract_class_members": "export abstract class A<T> extends B<T> implements I, J {\n"
    "  private readonly x = 1\n  protected static y?: string\n  declare z: number\n  #p = 2\n"
    "  constructor(private readonly a: string, public b?: number) { super() }\n"
    "  abstract m(): void\n  get v(): number { return this.#p }\n  set v(n) {}\n"
    "  static { init() }\n  async *gen() { yield 1 }\n  override toString() { return '' }\n}\n",
    "decorators": "@Component({ selector: 'x' })\nexport class C {\n  @Input() name!: string\n"
    "  @HostListener('click', ['$event'])\n  onClick(@Inject(T) e: Event) {}\n}\n",
    "async_await_generators": "async function f() {\n  for await (const x of g()) await x\n}\n"
    "function* g() {\n  yield* h()\n  const v = yield\n}\n"
    "const a = async () => await f()\nconst b = async (x: number) => x\n",
    "arrow_functions": "const f = (a: number, b = 2, ...c: string[]): number => a\nconst g = <T,>(x: T) => x\n"
    "const h = x => ({ x })\nconst k = () => {}\n",
    "template_literals_nested": "const s = `a ${b ? `c ${d}` : 'e'} f ${`${g}`} $ {} \\` ${1 + 2}`\n",
    "optional_chaining_nullish": "const v = a?.b?.[c]?.(d) ?? e\nx ??= 1\ny ||= 2\nz &&= 3\n",
    "satisfies_as_const_non_null": "const c = { a: 1 } as const\nconst d = c satisfies object\nconst e = f!.g!\n"
    "const h = <string>k\nlet m!: number\n",
    "imports_exports": "import a from 'a'\nimport * as b from \"b\"\nimport { c, d as e, type F } from './c'\n"
    "import type { G } from 'g'\nimport h, { i } from 'h'\nimport 'side-effect'\nimport j = require('j')\n"
    "export { a, b as default, type F }\nexport * from 'k'\nexport * as l from 'l'\n"
    "export type { G } from 'g'\nexport default function () {}\nexport = a\n",
    "dollar_identifiers": "const $ = 1, _$a = $, $$ = { $: $ }\n",
    "regex_literals": "const r = /ab+c\\/[/\\]]/gi.test(s)\nconst q = a / b / c\nconst t = s.replace(/\\s+/g, ' ')\n",
    "numbers": "const n = [0, 1_000, 0x1F, 0o17, 0b101, 1.5e-3, .5, 5., 10n, 0xFFn]\n",
    "strings": "const s = ['a\\'b', \"c\\\"d\", '\\u{1F600}\\x41', 'line\\\ncont']\n",
    "control_flow": "label: for (let i = 0, n = a.length; i < n; i++) {\n  if (!a[i]) continue label\n  else break\n}\n"
    "for (const k in o) {}\nwhile (x--) {}\ndo { x++ } while (x < 3)\n"
    "switch (x) {\n  case 1:\n  case 2: {\n    break\n  }\n  default:\n    f()\n}\n"
    "try { f() } catch { g() } finally { h() }\ntry { f() } catch (e: unknown) { throw e }\n",
    "destructuring": "const { a, b: { c }, ...d } = o\nconst [x, , y = 1, ...z] = arr\n[p, q] = [q, p];\n",
    "objects_and_classes_as_values": "const o = {\n  a,\n  'b': 1,\n  [k]: 2,\n  m() {},\n  get g() { return 1 },\n"
    "  async n() {},\n  *gen() {},\n  ...rest,\n}\nconst K = class extends Base {}\n",
    "function_overloads": "function f(x: string): string\nfunction f(x: number): number\n"
    "function f(x: any) { return x }\n",
    "type_predicates": "function isS(x: unknown): x is string { return typeof x === 'string' }\n"
    "function assert(v: unknown): asserts v {}\nfunction a2(this: Foo): asserts this is Bar {}\n",
    "generic_calls": "const m = new Map<string, Array<number>>()\nf<A<B>>()\nuseQuery<{ a: string }>({})\n",
    "instantiation_with_a_tuple_over_lines": "validate<[\n\tExpect<Equal<typeof requestMethods[number], "
    "RequestHttpMethod>>,\n]>();\n",
    "type_argument_ends_joined_at_any_depth": "f<[A<B<C>>]>()\nf<{ a: A<B<C>> }>()\nf<A<B<C<D>>>>()\n"
    "f<A | B<C>>()\nf<keyof A<B>>()\nf<typeof a<B>>()\ntype T = Map<K, Array<Set<V>>>\nx = f<A<B>>(1) >> 2\n",
    "trailing_comma_in_type_arguments": "f<A,>()\nf<A<B,>>()\nnew Map<string, number,>()\n",
    "using_declarations": "using res = open()\nawait using conn = connect(),\n  tx = begin()\n"
    "for (using x of xs) {}\nfor await (await using y of ys) {}\nusing(x)\nawait using(x)\nawait usingFoo()\n"
    "using\nx = 1\n",
    "mapped_type_as_on_its_own_line": "type M<T> = {\n  [K in keyof T\n    as K extends string ? K : never]: T[K]\n}\n",
    "constructor_type_in_extends": "type C<T> = T extends new (...a: any[]) => unknown ? 1 : 0\n"
    "type D<T> = T extends abstract new () => infer R ? R : never\n",
    "constructor_types": "type C = new (...a: any[]) => object\ntype D = abstract new () => object\n",
    "exponent": "const p = 2 ** 3 ** -x\nconst q = (-2) ** 2\n",
    "adjacent_signs": "a = b - -c + +d - --e + ++f\ng = h--- i + j+++k\nm = n-- - -p + (q++ + +r)\ns = t - /* c */-u\n",
    "keywords_as_property_names": "o.default = o.new + o.class\nconst x = { if: 1, delete() {}, in: 2 }\n",
    "contextual_keywords_as_names": "const type = 1, of = 2, as = 3, get = 4, async = 5, declare = 6\ntype = of + as\n",
}

INVALID = {
    "keyword_as_identifier": "const if = 1\n",
    "keyword_as_variable_in_expression": "x = class + 1\n",
    "keyword_glued_to_name": "export constx = 1\n",
    "two_statements_one_line": "const a = 1 const b = 2\n",
    "unterminated_string": "const s = 'abc\n",
    "unterminated_template": "const s = `abc\n",
    "unterminated_comment": "/* never closed\nlet x = 1\n",
    "unterminated_regex": "const r = /[/\n",
    "prose_before_code": "Here is the code:\nconst x = 1\n",
    "return_object_on_next_line": "function f() {\n  return\n  { a: 1, b: 2 }\n}\n",
    "postfix_increment_on_next_line": "x\n++\n",
    "missing_closing_brace": "function f() {\n  return 1\n",
    "unclosed_paren": "f(1, 2\n",
    "mixed_brackets": "const a = [1, 2)\n",
    "number_glued_to_name": "const n = 1in x\n",
    "number_then_member": "const n = 1.toString()\n",
    "leading_zero": "const n = 08\n",
    "trailing_separator": "const n = 1_\n",
    "octal_escape": "const s = '\\1'\n",
    "short_hex_escape_in_template": "const s = `\\x4`\n",
    "unary_base_of_exponent": "const p = -2 ** 2\n",
    "unary_inside_exponent": "const p = 2 ** -x ** 2\n",
    "postfix_glued_to_prefix": "a++++b\n",
    "postfix_then_prefix_decrement": "a-- --b\n",
    "decrement_after_as": "const y = x as number --z\n",
    "prefix_decrement_of_unary": "x = -- --y\n",
    "definite_assignment_glued": "let x!=1\n",
    "arrow_params_not_bindings": "const f = (1, 2) => 3\n",
    "as_on_next_line": "const y = x\nas T\n",
    "element_access_without_index": "a\n[]\n",
    "joined_type_argument_ends_one_too_many": "f<{ a: A<B<C>>> }>()\n",
    "optional_chain_in_new": "new a?.b()\n",
}


#: TypeScript's parser lets these through, the grammar keeps them out (stricter is sound): a fence is
#: three template literals each tagging the next, and a model asked for code should not wrap it in
#: Markdown; `throw` before a line break is an error the compiler reports after parsing.
NOT_CODE = {
    "throw_on_its_own_line": "throw\nnew Error()\n",
    "markdown_fence": "```ts\nconst x = 1\n```\n",
    "markdown_fence_after_code": "const x = 1\n```\n",
}


def test_newline_decides_between_continuation_and_a_new_statement() -> None:
    """ASI as JavaScript does it: a line break ends a statement only where the next token cannot go on."""
    assert check_text(TS, "a = b\n(c)\n").accepted  # a call: b(c)
    assert check_text(TS, "a = b\nc()\n").accepted  # two statements
    verdict = check_text(TS, "a = b\n[]\n")  # b[] is an element access without an index
    assert not verdict.accepted and verdict.line == 2


def _only_signs(token: bytes) -> bool:
    return bool(token.strip(b" ")) and set(token) <= set(b"+- ")


@needs_qwen
@pytest.mark.parametrize("prefix", ["let a = b--", "let a = b++", "let a = b", "let a = x as T", "a = b - "])
def test_no_sign_token_leads_to_a_dead_end(prefix: str) -> None:
    """After `b--` a second `--` used to match a lexeme that nothing could follow (so vLLM ended
    the output there); every `+`/`-` token the mask allows must now have a continuation."""
    assert dead_ends_after(TS, prefix, _only_signs, get_tokenizer(DEFAULT_TOKENIZER_DIR)) == []


#: Block comments whose next mask once needed more lexer fuel than llguidance's per-step limit
#: ("too many expressions constructed", after which vLLM ends the generation): 22 of 296 corpus files
#: failed a mask replay at a one-line `/** ... */` before a statement. The full Unicode identifier
#: classes inside every token's leading L were the cost; the rest are guards.
COMMENTS_WITHIN_LIMITS = {
    "one-line doc before a statement": "let x = 1;\n/** a */\nlet y = 2;\n",
    "one-line doc in a function body": "function f() {\n  let x = 1;\n  /** a */\n  let y = 2;\n}\n",
    "one-line doc after a statement": "let x = 1; /** a */\nlet y = 2;\n",
    "empty comment at the file start": "/**/\nlet a;\n",
    "banner": "/*****************\n * banner\n *****************/\nexport {};\n",
    "multi-line doc at file start": "/**\n * doc\n */\nexport function f() {}\n",
    "one-line doc in a class": "class A {\n  /** a */\n  x = 1;\n}\n",
    "inline in arguments": "f(0 /* flags */, x);\n",
    "multi-line after code": "let x = 1 /* a\n b */\nlet y = 2;\n",
}


@needs_qwen
@pytest.mark.parametrize("source", COMMENTS_WITHIN_LIMITS.values(), ids=COMMENTS_WITHIN_LIMITS.keys())
def test_block_comment_masks_stay_within_limits(source: str) -> None:
    verdict, _times = replay_with_masks(TS, source, get_tokenizer(DEFAULT_TOKENIZER_DIR))
    assert verdict.accepted, f"{verdict.where()}: {verdict.message}"


@pytest.mark.parametrize(
    ("source", "accepted"),
    [
        ("let café = 1, Ωmega = 2, имя = 3, 名前 = 4, なまえ = 5, 이름 = 6;\n", True),
        ("let naïveÀ$_9 = 1;\n", True),
        ("let a\u00d7 = 1;\n", False),  # U+00D7, the multiplication sign, is not a letter
        ("let नाम = 1;\n", False),  # Devanagari: outside the accepted blocks
    ],
)
def test_identifier_letters(source: str, accepted: bool) -> None:
    assert check_text(TS, source).accepted is accepted
