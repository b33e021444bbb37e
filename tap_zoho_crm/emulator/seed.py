"""Deterministic fake records, generated block by block on demand.

A seeded record is a pure function of (seed, module, row index, anchor): the store never
holds seeded rows, it asks for the block a row lives in and keeps a few recent blocks.
That makes seeding 200,000 leads instant and keeps memory flat however large the org.

Ids are 19-digit strings that grow with the row index (`BASE + (index + 1) * STEP +
jitter`, jitter below `STEP // 2`), so id order is row order and an id maps back to its
row without a table. Created and modified times fall within the year before the anchor.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from threading import Lock

from .catalog import INDUSTRY, INTERESTS, LEAD_SOURCE, LEAD_STATUS, ORG, RATING, USER_IDS

BLOCK = 4096
STEP = 1000
JITTER = STEP // 2
BASES = {"Leads": 4876543100000000000, "Contacts": 4876543200000000000,
         "Notes": 4876543300000000000}
YEAR = 365 * 24 * 3600

USERS = {
    USER_IDS[0]: ("User", "Alpha", "user.alpha@example.com"),
    USER_IDS[1]: ("User", "Beta", "user.beta@example.com"),
    USER_IDS[2]: ("Zoë", "Ærø", "zoe.aero@example.com"),
}
ACCOUNTS = {f"{ORG}000002000{n:03d}": name for n, name in enumerate(
    ["Example Co", "Acme, Inc.", 'The "Best" Widgets', "Zoë Ærø GmbH", "北京 Trading 🚀",
     "Northwind", "Contoso Ltd", "Fabrikam", "Globex", "Initech", "Umbrella Corp",
     "Hooli", "Vandelay Industries", "Wayne Enterprises", "Stark, Industries"], start=1)}
LAYOUTS = {f"{ORG}000000091023": "Standard", f"{ORG}000000091024": "Partner Leads"}
CONSENTS = {f"{ORG}000000096{n:03d}": f"Consent {n}" for n in range(1, 6)}
TAGS = ("VIP", "Follow-up", "Trade Show 2025", "Zoë's list", "北京")

_FIRST = ["Ava", "Liam", "Zoë", "Noah", "Mia", "Ærø", "Sofía", "Mateo", "Chloé", "Yuki",
          "Olivia", "Ethan", "Amélie", "Björn", "Priya", "Wei", "Fatima", "Jürgen", "Seán",
          "Nadia"]
_FIRST_ASCII = ["ava", "liam", "zoe", "noah", "mia", "aero", "sofia", "mateo", "chloe",
                "yuki", "olivia", "ethan", "amelie", "bjorn", "priya", "wei", "fatima",
                "jurgen", "sean", "nadia"]
_LAST = ["Smith", "O'Brien", "Nguyễn", "García", "Müller", "北京", "Kowalski", "Rossi",
         "Johnson", "Dubois", "Tanaka", "Okafor", "Silva", "Andersson", "Patel", "Cohen"]
_LAST_ASCII = ["smith", "obrien", "nguyen", "garcia", "muller", "beijing", "kowalski",
               "rossi", "johnson", "dubois", "tanaka", "okafor", "silva", "andersson",
               "patel", "cohen"]
_WORDS = ["Blue", "River", "Summit", "Quantum", "Cedar", "Harbor", "Atlas", "Nimbus",
          "Copper", "Maple", "Orbit", "Pioneer"]
_SUFFIX = ["LLC", "Inc.", "Ltd", "GmbH", "& Sons", "Group, Inc.", "Labs", "Co."]
_CITIES = [("Boston", "MA", "02134", "United States"), ("Zürich", "ZH", "8001", "Switzerland"),
           ("北京", "Beijing", "100000", "China"), ("Austin", "TX", "73301", "United States"),
           ("São Paulo", "SP", "01000-000", "Brazil"), ("Kraków", "", "30-001", "Poland"),
           ("Portland", "OR", "97201", "United States"), ("Reykjavík", "", "101", "Iceland")]
_DESCRIPTIONS = [
    "Met at the example.com expo.\nFollow up in April.",
    "Prefers email, not phone",
    'Said "call after 5pm"',
    "Line one\nLine two\r\nLine three",
    "Budget: 10,000",
    "Zoë Ærø 北京 🚀 — unicode everywhere",
    "\ufeffStarts with a byte-order mark",
    'Quote at the end "',
    "  leading and trailing spaces  ",
    "Tab\tseparated\tnotes",
]
_LONG_EVERY = 50_000


def base_id(module: str, index: int, seed: int) -> str:
    """The id of seeded row `index` (0-based)."""
    jitter = ((index * 2654435761) ^ (seed * 40503)) % JITTER
    return str(BASES[module] + (index + 1) * STEP + jitter)


def index_of(module: str, record_id: str, seed: int) -> int | None:
    """The row index a seeded id belongs to, or None when the id is not a seeded shape."""
    if not record_id.isdigit() or len(record_id) != 19:
        return None
    index = (int(record_id) - BASES[module]) // STEP - 1
    if index < 0 or base_id(module, index, seed) != record_id:
        return None
    return index


def created_id(module: str, count: int, serial: int) -> str:
    """Id for the `serial`-th record created through the admin API (after every seeded id)."""
    return str(BASES[module] + (count + 1 + serial) * STEP + JITTER + 277)


def _pick(rng: random.Random, pool: list, k: int, empty: int = 0) -> list:
    """k choices from `pool`, with `empty` extra None entries weighing against it."""
    return rng.choices(pool + [None] * empty, k=k)


def _times(rng: random.Random, k: int, anchor: int) -> tuple[list[int], list[int]]:
    created = [anchor - int(r * YEAR) for r in _floats(rng, k)]
    modified = [c + int(r * (anchor - c)) for c, r in zip(created, _floats(rng, k), strict=True)]
    return created, modified


def _floats(rng: random.Random, k: int) -> list[float]:
    rand = rng.random
    return [rand() for _ in range(k)]


def _leads_block(rng: random.Random, start: int, stop: int, seed: int, anchor: int) -> list:
    k = stop - start
    rows = range(start, stop)
    fi = rng.choices(range(len(_FIRST)), k=k)
    li = rng.choices(range(len(_LAST)), k=k)
    first = [_FIRST[i] if r > 0.1 else None for i, r in zip(fi, _floats(rng, k), strict=True)]
    last = [_LAST[i] for i in li]
    places = rng.choices(_CITIES, k=k)
    revenue = [round(r * 2_000_000, 2) if r > 0.2 else None for r in _floats(rng, k)]
    discount = _pick(rng, [n / 2 for n in range(40)], k, 20)
    created, modified = _times(rng, k, anchor)
    owners = rng.choices(USER_IDS, k=k)
    accounts = list(ACCOUNTS)
    columns = [
        [base_id("Leads", i, seed) for i in rows],
        owners,
        [f"{a} {b} {c}" for a, b, c in zip(rng.choices(_WORDS, k=k), rng.choices(_WORDS, k=k),
                                          rng.choices(_SUFFIX, k=k), strict=True)],
        first, last,
        [f"{f} {la}" if f else la for f, la in zip(first, last, strict=True)],
        [f"{_FIRST_ASCII[a]}.{_LAST_ASCII[b]}.{i + 1}@example.com" if r > 0.08 else None
         for a, b, i, r in zip(fi, li, rows, _floats(rng, k), strict=True)],
        [f"555-01{n:02d}" if n < 100 else None for n in rng.choices(range(115), k=k)],
        [f"https://www.example.com/lead-{i + 1}" if r > 0.2 else None
         for i, r in zip(rows, _floats(rng, k), strict=True)],
        _pick(rng, list(LEAD_STATUS), k, 2),
        _pick(rng, list(LEAD_SOURCE), k, 2),
        _pick(rng, list(INDUSTRY), k, 4),
        revenue,
        _pick(rng, [1, 5, 12, 48, 250, 800, 1200, 5000, 120000], k, 3),
        _pick(rng, list(RATING), k, 3),
        [r < 0.15 for r in _floats(rng, k)],
        [f"{n} Main St, Suite {n % 40 + 1}" if n < 900 else None
         for n in rng.choices(range(1000), k=k)],
        [p[0] for p in places], [p[1] or None for p in places],
        [p[2] for p in places], [p[3] for p in places],
        [_description(i, n)
         for i, n in zip(rows, rng.choices(range(len(_DESCRIPTIONS) * 3), k=k), strict=True)],
        [tuple(v for b, v in enumerate(INTERESTS) if n >> b & 1) or None
         for n in rng.choices(range(1 << len(INTERESTS)), k=k)],
        [str(9007199254740993 + n * 7) if n % 3 == 0 else None
         for n in rng.choices(range(10**6), k=k)],
        [round(r * 5, 2) if r > 0.3 else None for r in _floats(rng, k)],
        discount,
        [f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}" if n % 3 else None
         for n in rng.choices(range(336), k=k)],
        _pick(rng, accounts, k, len(accounts)),
        _pick(rng, accounts, k, len(accounts) * 9),
        _pick(rng, list(USER_IDS), k, 3),
        [f"LD-{i + 1:04d}" for i in rows],
        [round(r * d / 100, 2) if r is not None and d else None
         for r, d in zip(revenue, discount, strict=True)],
        [m - int(r * 86400) if r < 0.3 else None
         for m, r in zip(modified, _floats(rng, k), strict=True)],
        [f"{n:08x}{i:08x}" if n % 6 == 0 else None
         for n, i in zip(rng.choices(range(1 << 30), k=k), rows, strict=True)],
        _pick(rng, list(LAYOUTS), k),
        _pick(rng, list(CONSENTS), k, len(CONSENTS) * 6),
        [tuple(t for b, t in enumerate(TAGS) if n >> b & 1) or None
         for n in rng.choices(range(1 << len(TAGS)), k=k)],
    ]
    columns += [[None] * k] * 5
    columns += [owners, rng.choices(USER_IDS, k=k), created, modified]
    return list(zip(*columns, strict=True))


def _description(index: int, pick: int) -> str | None:
    if index % _LONG_EVERY == 7:
        return "Very long note. " * 7000 + "\nend of a >100 KB value, with a comma"
    if pick >= len(_DESCRIPTIONS):
        return None
    return _DESCRIPTIONS[pick]


def _contacts_block(rng: random.Random, start: int, stop: int, seed: int, anchor: int) -> list:
    return [_contacts_row(rng, index, seed, anchor) for index in range(start, stop)]


def _contacts_row(rng: random.Random, index: int, seed: int, anchor: int) -> tuple:
    fi, li = rng.randrange(len(_FIRST)), rng.randrange(len(_LAST))
    city, _state, _zip, country = rng.choice(_CITIES)
    created = anchor - rng.randrange(YEAR)
    modified = created + rng.randrange(anchor - created + 1)
    owner = rng.choice(USER_IDS)
    return (
        base_id("Contacts", index, seed), owner, _FIRST[fi], _LAST[li],
        f"{_FIRST[fi]} {_LAST[li]}", f"{_FIRST_ASCII[fi]}.{_LAST_ASCII[li]}.c{index + 1}"
        "@example.com", f"555-01{rng.randrange(100):02d}",
        rng.choice(["CEO", "Buyer", "Engineer, Senior", None]),
        rng.choice(list(ACCOUNTS)) if rng.random() < 0.7 else None,
        rng.choice(LEAD_SOURCE), city, country,
        f"19{rng.randrange(50, 99)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        rng.random() < 0.1, rng.choice([*_DESCRIPTIONS, None, None]), None,
        owner, owner, created, modified,
    )


_BLOCK_MAKERS: dict[str, Callable[[random.Random, int, int, int, int], list]] = {
    "Leads": _leads_block, "Contacts": _contacts_block,
}


class SeededRows:
    """The seeded rows of one module: `count` rows, made on demand, a few blocks cached."""

    def __init__(self, module: str, count: int, seed: int, anchor: int) -> None:
        if count and module not in _BLOCK_MAKERS:
            raise ValueError(f"no seeder for module {module}")
        self.module = module
        self.count = count
        self.seed = seed
        self.anchor = anchor
        self._cache: OrderedDict[int, list[tuple]] = OrderedDict()
        self._lock = Lock()

    def block(self, number: int) -> list[tuple]:
        """Rows `number * BLOCK` up to the next block (or `count`), generated once each."""
        with self._lock:
            rows = self._cache.get(number)
            if rows is not None:
                self._cache.move_to_end(number)
                return rows
        rows = self._make_block(number)
        with self._lock:
            self._cache[number] = rows
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return rows

    def _make_block(self, number: int) -> list[tuple]:
        maker = _BLOCK_MAKERS[self.module]
        rng = random.Random(f"{self.seed}:{self.module}:{number}")
        start = number * BLOCK
        stop = min(start + BLOCK, self.count)
        return maker(rng, start, stop, self.seed, self.anchor)

    def row(self, index: int) -> tuple:
        """The seeded row at `index` (0 <= index < count)."""
        return self.block(index // BLOCK)[index % BLOCK]

    def index_of(self, record_id: str) -> int | None:
        """The index of a seeded id, or None when it is not one of this module's rows."""
        index = index_of(self.module, record_id, self.seed)
        return index if index is not None and index < self.count else None
