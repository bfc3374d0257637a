"""rust.lark accepts ordinary Rust 2021 and keeps out what ``rustfmt --edition 2021`` rejects.

The snippets below, and the checks every code grammar gets (test_languages.py: rustfmt agrees with the
snippets, the corpus accept rate, random walks, mask replay), plus what only Rust needs. Verdicts use
llguidance's byte-level tokenizer (same verdict as Qwen's, exact offsets); the mask replay uses the Qwen
tokenizer, which is what vLLM feeds the matcher.
"""

from __future__ import annotations

import grammars
from grammar_lab.masks import replay_with_masks
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer
from grammars.validation import check_text

from .markers import needs_qwen

RUST = grammars.load("rust")


VALID = {
    "main": 'fn main() {\n    println!("Hello, {}!", "world");\n}\n',
    "no_trailing_newline": "fn main() {}",
    "leading_comments": "// Licensed under MIT\n/* block */\n\n//! Crate docs.\n#![allow(dead_code)]\n\nfn f() {}\n",
    "doc_comments": "/// Adds one.\n///\n/// # Examples\n#[inline]\npub fn add_one(x: i32) -> i32 {\n    x + 1\n}\n"
    "/** Block doc. */\nstruct S;\n",
    "comments_everywhere": "fn f(/* a */ x: u8 /* b */) -> u8 {\n    // line\n    x //trailing\n}\n////  not a doc\n",
    "use_trees": "use std::collections::{HashMap, HashSet};\nuse std::io::{self, Read as _, Write};\n"
    "use super::*;\nuse crate::a::b as c;\nuse ::std::fmt;\npub(crate) use self::inner::{x, y::{z, w}};\n",
    "extern_crate": "extern crate alloc;\nextern crate self as my_crate;\n#[macro_use]\nextern crate log;\n",
    "visibility": "pub struct A;\npub(crate) struct B;\npub(super) fn c() {}\npub(in crate::m) enum D {}\n"
    "pub(self) type E = u8;\n",
    "struct_forms": "struct Unit;\nstruct Tuple(pub u8, pub(crate) String);\n"
    "#[derive(Debug, Clone)]\npub struct Named<'a, T: ?Sized + 'a> {\n    /// doc\n    pub name: &'a T,\n"
    "    #[serde(skip)]\n    count: usize,\n}\nstruct W<T>(T) where T: Copy;\n",
    "enum_forms": "enum E {\n    A,\n    B(u8, u16),\n    C { x: i32 },\n    #[default]\n    D = 4,\n}\n",
    "union": "#[repr(C)]\nunion U {\n    f: f32,\n    u: u32,\n}\nfn union() {}\n",
    "generics_where_lifetimes": "fn longest<'a, 'b: 'a, T>(x: &'a str, y: &'b str, t: T) -> &'a str\nwhere\n"
    "    T: Iterator<Item = u8> + Clone + 'static,\n    for<'c> &'c T: IntoIterator,\n{\n    x\n}\n",
    "const_generics": "struct Buf<const N: usize = 8> {\n    data: [u8; N],\n}\nfn f() -> Buf<4> {\n"
    "    let _: Buf<{ 2 + 2 }> = g::<3>();\n    todo!()\n}\n",
    "traits_and_impls": "pub unsafe trait Tr: Send + Sync {\n    type Out: Clone;\n    const N: usize = 1;\n"
    "    fn m(&self) -> Self::Out;\n    fn d(&mut self) {}\n}\nimpl<T: Clone> Tr for Vec<T> {\n"
    "    type Out = T;\n    fn m(&self) -> T {\n        self[0].clone()\n    }\n}\nimpl<'a> dyn Tr + 'a {}\n",
    "self_params": "impl S {\n    fn a(self) {}\n    fn b(&self) {}\n    fn c(&mut self) {}\n    fn d(&'a self) {}\n"
    "    fn e(mut self) {}\n    fn f(self: Box<Self>) {}\n    fn g(self: &Arc<Self>, x: u8) {}\n}\n",
    "type_alias_const_static": "type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;\n"
    "const MAX: u32 = 1 << 10;\nconst _: () = ();\nstatic mut COUNT: AtomicUsize = AtomicUsize::new(0);\n",
    "modules": "mod a;\npub mod b {\n    #![allow(unused)]\n    pub fn f() {}\n}\n",
    "extern_block": 'extern "C" {\n    fn abs(x: i32) -> i32;\n    static errno: i32;\n'
    "    fn printf(f: *const u8, ...) -> i32;\n}\n"
    'pub unsafe extern "C" fn cb(p: *mut c_void) {}\n',
    "macro_rules": "macro_rules! square {\n    ($x:expr) => {\n        $x * $x\n    };\n"
    "    ($($t:tt)*) => {{ let v = vec![$($t)*]; v }};\n}\n#[macro_export]\nmacro_rules! m { () => () }\n",
    "macro_invocations": 'fn f() {\n    let v = vec![1, 2, 3];\n    assert_eq!(v.len(), 3, "len was {}", v.len());\n'
    '    let s = format!("{x:?} {0}", 1);\n    thread_local! { static X: u8 = 0; }\n    m!(a => b; c, d);\n}\n'
    "lazy_static::lazy_static! {\n    static ref RE: u8 = 1;\n}\nitem_macro!(struct X;);\n",
    "quote_style_token_trees": "fn f() -> T {\n    quote! {\n"
    "        impl #impl_generics Trait for #name #ty_generics {\n"
    "            fn f(&self) -> &'static str { #s }\n        }\n    }\n}\n",
    "closures": "fn f() {\n    let a = |x| x + 1;\n    let b = |x: u8, y: &str| -> u8 { x };\n"
    "    let c = move || a(1);\n"
    "    let d = async move { 1 };\n    let e = async |x: u8| x;\n"
    "    v.iter().map(|&(a, b)| a + b).for_each(&mut |x| drop(x));\n}\n",
    "match_patterns": "fn f(x: Option<(u8, &str)>) -> u8 {\n    match x {\n        Some((0, _)) | None => 0,\n"
    "        Some((n @ 1..=9, s)) if s.is_empty() => n,\n        Some((10..=19 | 30, _)) => 2,\n"
    "        Some((b'a'..=b'z', \"lit\")) => 3,\n        Some((-1..=1, ref r)) => {\n            4\n        }\n"
    "        Some((n, _)) => match n {\n            _ => 5,\n        },\n    }\n}\n",
    "patterns_destructuring": "fn f(&(a, b): &(u8, u8), [x, .., y]: [u8; 4]) {\n"
    "    let Point { x, y: ref mut yy, .. } = p;\n"
    "    let [first, rest @ ..] = arr else { return };\n    let (mut a, _) = t;\n    if let S(a, ..) | T(a) = s {}\n"
    "    match c { 'a'..='z' => {}\n        E::V { f: 0, .. } => {}\n        &mut [ref x, _] => {}\n"
    "        _ => {} }\n}\n",
    "if_let_while_let_let_else": "fn f() {\n    if let Some(x) = opt {\n    } else if y > 0 {\n    } else {\n    }\n"
    "    while let Some(top) = stack.pop() {\n        continue;\n    }\n"
    "    let Ok(v) = s.parse::<u8>() else {\n        panic!();\n    };\n}\n",
    "labeled_loops": "fn f() {\n    'outer: for i in 0..10 {\n        'inner: loop {\n"
    "            break 'outer;\n        }\n"
    "        while i < 3 {\n            continue 'outer;\n        }\n    }\n    let v = 'b: {\n"
    "        break 'b 1;\n    };\n}\n",
    "operators_question_as_turbofish": "fn f() -> Result<(), E> {\n    let n = s.parse::<u32>()? as usize + 1;\n"
    "    let v = it.collect::<Vec<Vec<u8>>>();\n    let m = a << 2 | b & !c ^ d >> 1;\n    x += 1;\n    y <<= 2;\n"
    "    let r = &mut *p;\n    let q = &&x;\n    let ok = a == b && c != d || !e && f <= g;\n    Ok(())\n}\n",
    "ranges": "fn f() {\n    let a = 0..10;\n    let b = ..=5;\n    let c = x[1..];\n    let d = &s[i + 1..j - 1];\n"
    "    for k in 0..=n {}\n    let e = ..;\n    let g = (1..2).len();\n}\n",
    "literals": "fn f() {\n"
    "    let a = [1u8, 0xFF, 0o17, 0b1010_1010, 1_000_000i64, 2.5e-3f32, 1e10, 3.0, 2., 7usize];\n"
    '    let s = ("esc \\" \\n'
    ' \\u{1F600} \\x41", r"raw \\d", r#"raw "quoted""#, b"bytes\\x80", br"raw");\n'
    "    let c = ('a', '\\'', '\\n', '\\u{00e9}', 'é', b'x', b'\\'');\n    let m = \"multi\n    line \\\n"
    '    continued";\n'
    "    let t = (true, false, 3.into(), 1.0.max(2.0), x.0.1);\n}\n",
    "chars_vs_lifetimes": "fn f<'a>(x: &'a str) -> Option<&'a char> {\n    let c = 'a';\n    let d = '\\'';\n"
    "    'l: loop {\n        break 'l;\n    }\n    None\n}\n",
    "raw_identifiers": "fn r#match(r#type: u8) -> u8 {\n    let r#fn = r#type;\n    r#fn\n}\n",
    "async_await_unsafe": "async fn f() -> u8 {\n    let x = g().await?;\n    let y = unsafe { *ptr };\n"
    "    h(async { 1 }.await).await\n}\nunsafe fn u() {}\nunsafe impl Send for S {}\n",
    "dyn_impl_fn_pointers": "fn f(a: &dyn Fn(u8) -> u8, b: impl Into<String>, c: fn(u8) -> bool,\n"
    '    d: unsafe extern "C" fn(*const u8), '
    "e: Box<dyn for<'a> Fn(&'a str) + Send>) -> impl Iterator<Item = u8> + '_ {\n"
    "    std::iter::empty()\n}\n",
    "qualified_paths": "fn f<T: Iterator>() -> <T as Iterator>::Item {\n    <T as Default>::default();\n"
    "    <Vec<u8>>::new();\n    T::Item::default()\n}\n",
    "struct_literals": "fn f() -> S {\n    let p = Point { x: 1, y };\n    let q = Point { x: 2, ..p };\n"
    "    let t = Tuple { 0: 1, 1: 2 };\n    S { a: Self::A, ..Default::default() }\n}\n",
    "struct_literal_in_condition_needs_parens": "fn f() {\n    if x == (Point { x: 1 }) {}\n    match (S { a: 1 }) {\n"
    "        _ => {}\n    }\n}\n",
    "block_like_statements": "fn f() {\n    if a {} else {}\n    match x {}\n    unsafe { g() }\n    loop { break }\n"
    "    { let y = 1; }\n    match x { _ => () }.unwrap();\n    m! { a }\n    x\n}\n",
    "attributes_on_statements_and_args": "#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {\n"
    "        #[allow(unused)]\n        let x = 1;\n        f(\n            #[cfg(unix)]\n            a,\n"
    "            b,\n        );\n    }\n}\n",
    "casts": "fn f() {\n    let a = x as u8 as u32;\n    let b = (x as usize) < y;\n    let c = x as usize <= y;\n"
    "    let p = &v as *const _ as *mut u8;\n}\n",
    "specialization_and_auto_traits": "auto trait A {}\nimpl<T> S for T {\n    default fn f() {}\n}\n",
    "never_and_infer_types": "fn f() -> ! {\n    let v: Vec<_> = Vec::new();\n    panic!()\n}\n",
    "crlf": "fn main() {\r\n    let x = 1;\r\n}\r\n",
    "byte_order_mark": "\ufeff//! Docs.\nfn f() {}\n",
    "deprecated_range_pattern": "fn f(b: u8) {\n    match b {\n        b'0'...b'9' => {}\n        _ => {}\n    }\n}\n",
}

INVALID = {
    "keyword_as_identifier": "fn f() {\n    let fn = 1;\n}\n",
    "keyword_as_fn_name": "fn match() {}\n",
    "keyword_as_field": "fn f() {\n    x.type = 1;\n}\n",
    "keyword_glued_to_name": "pubfn f() {}\n",
    "keyword_glued_after_pub": "pub fnf() {}\n",
    "literal_glued_to_as": "fn f() {\n    let x = 1as u8;\n}\n",
    "glued_else_if": "fn f() {\n    let a = if x { 1 } elseif y { 2 } else { 3 };\n}\n",
    "unterminated_string": 'fn f() {\n    let s = "abc;\n}\n',
    "unterminated_raw_string": 'fn f() {\n    let s = r#"abc";\n}\n',
    "unterminated_block_comment": "/* never closed\nfn f() {}\n",
    "unterminated_char": "fn f() {\n    let c = 'a;\n}\n",
    "two_char_char": "fn f() {\n    let c = 'ab';\n}\n",
    "non_ascii_byte_string": 'fn f() {\n    let b = b"é";\n}\n',
    "surrogate_escape": 'fn f() {\n    let s = "\\u{D800}";\n}\n',
    "reserved_prefix_in_macro": 'fn f() {\n    m!(x"a");\n}\n',
    "markdown_fence": "```rust\nfn main() {}\n```\n",
    "prose_before_code": "Here is the code:\nfn main() {}\n",
    "missing_semicolon": "fn f() {\n    let x = 1\n    let y = 2;\n}\n",
    "unbalanced_braces": "fn f() {\n    if x {\n}\n",
    "chained_comparison": "fn f() {\n    let b = a < b < c;\n}\n",
    "cast_then_less_than": "fn f() {\n    let b = a as usize < c;\n}\n",
    "struct_literal_in_condition": "fn f() {\n    if Foo { x: 1 } == y {}\n}\n",
    "block_then_binary_operator": "fn f() {\n    match x {} + 1;\n}\n",
    "let_else_ending_in_brace": "fn f() {\n    let Some(x) = if a { b } else { c } else { return };\n}\n",
    "dangling_doc_comment": "fn f() {\n    let x = 1;\n    /// doc\n}\n",
    "inner_doc_after_item": "fn f() {}\n//! late inner doc\n",
    "ambiguous_plus_in_ref_type": "fn f(x: &dyn A + B) {}\n",
    "let_chain_2024": "fn f() {\n    if let Some(x) = a && b {}\n}\n",
    "top_level_or_in_let": "fn f() {\n    let A | B = x;\n}\n",
    "inclusive_range_without_end": "fn f() {\n    let r = 1..=;\n}\n",
    "expression_at_top_level": "let x = 1;\n",
}


def test_failure_position_points_at_the_glued_keyword() -> None:
    """`pub fnf` lexes as `pub` then the word `fnf`, which cannot follow a visibility."""
    source = "pub fnf() {}\n"
    verdict = check_text(RUST, source)
    assert not verdict.accepted
    assert (verdict.line, verdict.column) == (1, 7)


#: `0.. {` once left two readings open through the whole loop body (a range up to a block, and a
#: loop over `0..`); the mask after the loop then exceeded llguidance's 50,000 Earley items.
OPEN_RANGE_LOOP = """\
fn main() {
    for i in 0.. {
        if i > 3 {
            break;
        }
    }

    // after the loop
    let r = 0..{ 5 };
}
"""


@needs_qwen
def test_masks_after_a_loop_over_an_open_range() -> None:
    verdict, _times = replay_with_masks(RUST, OPEN_RANGE_LOOP, get_tokenizer(DEFAULT_TOKENIZER_DIR))
    assert verdict.accepted, f"{verdict.where()}: {verdict.message}"
