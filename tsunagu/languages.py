"""The language catalogue (PROTOCOL.md section 3); deployments may load their own JSON list."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    name: str
    name_en: str
    name_ja: str
    modality: str  # "sign" | "spoken"

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


# The kiosks' daily test call (PROTOCOL.md section 14): answered by the answering bot only, in
# no catalogue, no person's language, and never counted in the statistics.
TEST_LANGUAGE = "test"

DEFAULT_CATALOGUE: tuple[Language, ...] = (
    Language("jsl", "日本手話", "Japanese Sign Language", "日本手話", "sign"),
    Language("en", "English", "English", "英語", "spoken"),
    Language("zh", "中文", "Chinese", "中国語", "spoken"),
    Language("ko", "한국어", "Korean", "韓国語", "spoken"),
    Language("vi", "Tiếng Việt", "Vietnamese", "ベトナム語", "spoken"),
    Language("pt", "Português", "Portuguese", "ポルトガル語", "spoken"),
    Language("es", "Español", "Spanish", "スペイン語", "spoken"),
    Language("tl", "Tagalog", "Tagalog", "タガログ語", "spoken"),
    Language("ne", "नेपाली", "Nepali", "ネパール語", "spoken"),
)


def load_catalogue(path: str | None) -> tuple[Language, ...]:
    """The default catalogue, or a JSON list of {code, name, name_en, name_ja, modality}."""
    if not path:
        return DEFAULT_CATALOGUE
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    catalogue = tuple(Language(**item) for item in items)
    if any(lang.code == TEST_LANGUAGE for lang in catalogue):
        raise ValueError(f"{path}: the code {TEST_LANGUAGE!r} is reserved for test calls")
    return catalogue
