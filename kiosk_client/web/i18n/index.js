// The kiosk's words after a language is chosen: one table per language of the
// default catalogue, each beside Japanese. A language without a table (a
// deployment's own catalogue) falls back to English beside Japanese.

import en from "./en.js";
import es from "./es.js";
import ja from "./ja.js";
import jsl from "./jsl.js";
import ko from "./ko.js";
import ne from "./ne.js";
import pt from "./pt.js";
import tl from "./tl.js";
import vi from "./vi.js";
import zh from "./zh.js";

export const TABLES = { en, es, jsl, ko, ne, pt, tl, vi, zh };
export const JAPANESE = ja;

/** BCP 47 tag for a catalogue code (JSL has no written form: its words are Japanese). */
export const LANG_TAG = { jsl: "ja", en: "en", zh: "zh", ko: "ko", vi: "vi", pt: "pt", es: "es", tl: "tl", ne: "ne" };

export function tagFor(code) {
  return LANG_TAG[code] || code || "en";
}

const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ""));

/**
 * The sentence `key` for the language `code`: {tag, text, ja, pictogram?}.
 * For JSL `text` is empty and `pictogram` carries the pictogram.
 */
export function phrase(code, key, vars = {}) {
  const ja_ = fill(ja[key] ?? key, vars);
  if (code === "jsl") return { tag: "ja", text: "", ja: ja_, pictogram: jsl[key] || "" };
  const table = TABLES[code] || en;
  return { tag: TABLES[code] ? tagFor(code) : "en", text: fill(table[key] ?? en[key] ?? key, vars), ja: ja_ };
}
