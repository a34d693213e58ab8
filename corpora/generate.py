#!/usr/bin/env python3
"""Generate ``corpora/tales.txt``, an original training corpus for charrnn.

The corpus is a long, nonsensical but well-formed "chronicle play": numbered chapters
with titles and a prose prologue, numbered scenes with a setting line, stage directions
in [brackets], and speeches headed by a speaker name in capitals and a colon on its own
line.  A recurring cast of invented people wanders between invented places, trading
lanterns, goats and grudges.  It is MACHINE-GENERATED ORIGINAL TEXT: every word comes from
the template grammar and invented word lists below, nothing from books, websites or other
projects.  Structure at several scales (words, sentences, speeches, scenes, numbering)
is easy to learn, while the random choices keep the entropy well above zero.

Usage: python corpora/generate.py [--check] [--size BYTES] [--out PATH]
--check verifies that --out is what this --size would produce (exit 1 if not).  Output
is ASCII with '\\n' line endings, byte-for-byte reproducible from SEED, --size and this
file, and is written in scene-sized pieces so huge files never need to fit in memory.
"""

import argparse
import hashlib
import os
import random
import re
import sys
import textwrap

SEED = 1729
DEFAULT_SIZE = 800_000  # bytes; the default file lands just above this
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tales.txt")

# --- Invented vocabulary -------------------------------------------------------
W = str.split
NAMES = W(
    "Orlin Maevy Tesker Brannoc Ilsabet Quennel Harro Wennith Daskin Corvane Pellis Rhonet "
    "Sabelle Tamsk Ulvar Yselde Gorrim Fennet Lisk Amarro Odrey Bastel Nimmet Verrick Eddra "
    "Kettrin Phinna Ruddock Tibbet Wystal Jossam Carrow Hesper Molloch Briony Ambry"
)
# Unnamed speakers: (label as it appears above a speech, form used to address them).
ROLES = [
    ("FERRYMAN", "Ferryman"),
    ("FIRST GUARD", "Guard"),
    ("THE REEVE", "Reeve"),
    ("OLD WOMAN", "Grandmother"),
    ("TINKER", "Tinker"),
    ("CHILD", "child"),
    ("INNKEEPER", "Innkeeper"),
    ("MESSENGER", "Messenger"),
    ("SEXTON", "Sexton"),
]
PLACES = W(
    "Vellmarsh Quorrow Saltmere Brackwater Tillwick Dunmorrow Farrowgate Kestle Emberlow "
    "Gallowmere Thistlecombe Wrenfold Mirrowdeep Callisford Ashfenn Orrinby Hobbleside "
    "Marrowick Sennet Vost Lannerby Coldharrow"
)
# Countable nouns with regular plurals only, so plural() below can stay tiny.
NOUNS = W(
    "lantern ferry ledger bell goat orchard key barrel rope letter candle cart mill well "
    "lamb bridge tower coin map boat kettle hound crow owl river road gate storm song "
    "promise debt secret ring sword shovel cloak wheel window door ladder chest drum flute "
    "feast fever wager riddle ghost lamp net anchor oar apple pear inkpot quill bucket "
    "chimney hat boot spoon needle thimble saddle horse donkey pig hen egg turnip onion "
    "ditch hedge fence stone hill marsh reed heron eel oath bargain quarrel wedding sermon "
    "rumour compass clock mirror scarecrow beehive lock harp"
)
ADJS = W(
    "old cold crooked silver quiet hungry foolish wet bright broken little heavy rusted "
    "green honest lazy bitter pale grey black red golden wooden hollow sleepy stubborn "
    "clever wicked gentle careful drowned lost borrowed stolen narrow tall loud patient "
    "jealous proud humble ragged muddy salty ancient new strange sorry faithful cracked "
    "painted frozen burnt sweet sour tired restless holy unlucky empty"
)
# Transitive verbs as "base past third-person"; intransitive ones add "-ing".
VT = [
    v.split()
    for v in (
        "take took takes|find found finds|carry carried carries|mend mended mends|sell sold sells|"
        "hide hid hides|steal stole steals|bury buried buries|open opened opens|count counted counts|"
        "burn burned burns|keep kept keeps|bring brought brings|lose lost loses|feed fed feeds|"
        "follow followed follows|watch watched watches|borrow borrowed borrows|break broke breaks|"
        "paint painted paints|ring rang rings|sharpen sharpened sharpens|wake woke wakes|"
        "forget forgot forgets|trade traded trades|weigh weighed weighs|polish polished polishes|"
        "guard guarded guards|bless blessed blesses|curse cursed curses|drop dropped drops|"
        "fetch fetched fetches|hang hung hangs|tie tied ties|wash washed washes|mark marked marks|"
        "want wanted wants|remember remembered remembers"
    ).split("|")
]
VI = [
    v.split()
    for v in (
        "sleep slept sleeps sleeping|wait waited waits waiting|sing sang sings singing|"
        "laugh laughed laughs laughing|weep wept weeps weeping|run ran runs running|"
        "wander wandered wanders wandering|pray prayed prays praying|hum hummed hums humming|"
        "listen listened listens listening|whistle whistled whistles whistling|"
        "dance danced dances dancing|shiver shivered shivers shivering|fish fished fishes fishing|"
        "grumble grumbled grumbles grumbling|limp limped limps limping|dig dug digs digging|"
        "argue argued argues arguing|swim swam swims swimming|kneel knelt kneels kneeling|"
        "sulk sulked sulks sulking|drift drifted drifts drifting"
    ).split("|")
]


def plural(n):
    if n.endswith(("s", "sh", "ch", "x")):
        return n + "es"
    if n.endswith("y") and n[-2] not in "aeiou":
        return n[:-1] + "ies"
    return n + "s"


# --- Grammar -------------------------------------------------------------------
# Each key maps to alternatives; "{key}" inside an alternative is expanded
# recursively.  Per-chapter/per-speech keys (Name, addr, place, ...) are supplied
# in a context dict that overrides these, which is what keeps names coherent.
G = {
    "noun": NOUNS,
    "nouns": [plural(n) for n in NOUNS],
    "adj": ADJS,
    "ving": [v[3] for v in VI],
    "vt": [v[0] for v in VT],
    "vtd": [v[1] for v in VT],
    "vts": [v[2] for v in VT],
    "vi": [v[0] for v in VI],
    "vid": [v[1] for v in VI],
    "vis": [v[2] for v in VI],
    "numw": W("two three four five six seven nine twelve forty"),
    "ordinal": W("first second third seventh ninth twelfth last"),
    "kin": W("mother father grandmother uncle aunt sister brother cousin"),
    "trade": W("miller reeve ferryman sexton tinker innkeeper bailiff shepherd weaver"),
    "room": W("kitchen cellar loft chapel barn yard stable larder"),
    "weather": W("rain fog frost wind sleet thaw drought"),
    "unit": W("miles leagues days hours"),
    "adv": [
        "slowly",
        "quietly",
        "badly",
        "twice",
        "again",
        "alone",
        "gladly",
        "carefully",
        "at once",
        "for nothing",
        "without a word",
        "in the dark",
    ],
    "route": ["old road", "river", "marsh path", "high ridge", "ferry"],
    "interj": ["Alas", "Mercy", "Ha", "Peace", "Bless me", "Heavens", "Well, well"],
    "np": [
        "the {noun}",
        "the {adj} {noun}",
        "a {noun}",
        "a {adj} {noun}",
        "my {noun}",
        "your {noun}",
        "{Name}'s {noun}",
        "the {noun} of {place}",
        "{numw} {nouns}",
        "the {nouns}",
        "the {adj} {nouns}",
        "that {noun}",
    ],
    "np1": [
        "the {noun}",
        "the {adj} {noun}",
        "a {adj} {noun}",
        "my {noun}",
        "{Name}'s {noun}",
        "the {noun} of {place}",
        "that {noun}",
    ],  # singular, for "... is/was"
    "subj": ["I", "we", "you", "they", "{Name}", "the {trade}", "my {kin}", "the {adj} {trade}", "nobody"],
    "subj3": ["{Name}", "the {trade}", "my {kin}", "nobody in {place}", "everyone", "the {adj} {noun}"],
    "pp": [
        "at {place}",
        "by the {noun}",
        "under the {adj} {noun}",
        "behind the {noun}",
        "on the road to {place}",
        "in {place}",
        "beside the {noun}",
        "near {place}",
    ],
    "soon": ["dawn", "supper", "market day", "the {weather} comes", "{Name} wakes"],
    "time": [
        "tonight",
        "at dawn",
        "last winter",
        "on market day",
        "yesterday",
        "before supper",
        "in the {ordinal} year",
        "after the {weather}",
        "when the bell rang {numw} times",
        "since the {noun} was {adj}",
    ],
    "proverb": [
        "a {adj} {noun} never {vts} {np}",
        "the {noun} {vts} what the {noun} {vts}",
        "{numw} {nouns} make a poor {noun}",
        "no {noun} was ever {adj} in {place}",
        "the {adj} {noun} {vis} last",
        "you cannot {vt} a {noun} with a {noun}",
    ],
    "stmt": [
        "{subj} {vtd} {np} {pp}.",
        "{subj} {vtd} {np} {time}.",
        "do not speak to me of {np}.",
        "{subj3} {vts} {np} {pp}, or so they say.",
        "we must {vt} {np} before {soon}.",
        "the {noun} is {adj}, and the {noun} is {adj}.",
        "the {noun} will not {vt} itself.",
        "there was a {adj} {noun} in {place} once, and it {vid} {adv}.",
        "if you {vt} {np}, I will {vt} {np}.",
        "my {kin} used to say that {proverb}.",
        "it is {numw} {unit} to {place} by the {route}.",
        "tell {Name} that {np1} is {adj}.",
        "I saw {Name} {ving} {pp} {time}.",
        "you {vi} like a {noun} in the {weather}.",
        "when the {noun} {vis}, {Name} will come back to {place}.",
        "nobody in {place} {vts} {np} anymore.",
        "I have {numw} {nouns} and not one {noun}.",
        "{Name} {vid} all the way from {place}, {adv}.",
        "it was {adj} work, and {Name} {vid} {adv}.",
        "I would rather {vt} {np} than {vt} {np}.",
        "{Name} and {Name} {vtd} {np} together.",
        "a {noun} is only a {noun}, {addr}.",
        "the {adj} {noun} belongs to {Name}, and always did.",
        "there are {numw} {nouns} in the {room}, and one of them is {adj}.",
        "they say {subj3} {vts} {np} {pp}.",
        "I only {vtd} {np} because {Name} {vtd} {np}.",
        "{adv}, the {noun} {vid} and the {nouns} {vid}.",
        "{proverb}, {addr}.",
        "I have not slept since {Name} {vtd} {np}.",
        "the {nouns} of {place} are {adj} this year.",
        "the {trade} {vtd} {np} and {vtd} {np}.",
        "I was born in {place}, where the {nouns} are {adj}.",
        "{Name} says the {noun} is {adj}, but {Name} says it is {adj}.",
        "it is {adj} to {vt} {np} in the {weather}.",
    ],
    "ques": [
        "where is {np}?",
        "who {vtd} {np}?",
        "why would {Name} {vt} {np}?",
        "have you seen {np}?",
        "did you {vt} {np} {pp}?",
        "what is a {noun} worth in {place}?",
        "what became of {np}?",
        "how many {nouns} did {subj} {vt}?",
        "is it true that {Name} {vtd} {np}?",
        "will you {vt} {np} for me, {addr}?",
        "whose {noun} is this?",
        "can the {noun} {vi}?",
        "who sent you to {place}?",
        "must I {vt} {np} again?",
        "{addr}, are you {adj}?",
        "and what does {Name} say to that?",
        "when did you last {vt} {np}?",
    ],
    "excl": [
        "by the {noun} of {place}!",
        "{interj}!",
        "oh, my {adj} {noun}!",
        "enough!",
        "hush, {addr}!",
        "not the {nouns} again!",
        "what a {adj} {noun} you are!",
        "{interj}, {addr}!",
    ],
    "cmd": [
        "{vt} {np}, {addr}.",
        "go to {place} and {vt} {np}.",
        "do not {vt} {np}.",
        "bring me {np}, and quickly.",
        "sit down, {addr}, and {vt} {np}.",
        "let {Name} {vt} {np}.",
        "say nothing to {Name} about {np}.",
        "{vt} it {adv}, or {Name} will know.",
    ],
    "answer": [
        "Yes.",
        "No.",
        "Perhaps.",
        "I do not know.",
        "Ask {Name}.",
        "Never.",
        "Yes, {addr}.",
        "No, {addr}.",
        "Not since {Name} left.",
        "Who can say?",
    ],
    "setting": [
        "A {adj} {room} in {place}",
        "The ferry landing at {place}",
        "A hill above {place}",
        "The market square of {place}",
        "An inn at {place}, called the {Adj} {Noun}",
        "The road between {place} and {place}",
        "The mill at {place}",
        "A marsh near {place}",
    ],
    "daytime": ["Night.", "Morning.", "Evening.", "Rain.", "Fog.", "A grey noon.", "Before dawn.", "Market day."],
    "action": [
        "sets down the {noun}",
        "looks toward {place}",
        "laughs",
        "sits by the {noun}",
        "crosses to the {noun}",
        "counts the {nouns}",
        "hides the {noun}",
        "{vis} {adv}",
        "takes up a {noun}",
        "bows",
    ],
    "noise": [
        "Thunder.",
        "A bell rings {numw} times.",
        "A {noun} falls somewhere offstage.",
        "Wind.",
        "A dog barks.",
        "Knocking at the door.",
    ],
    "narr": [
        "In the {ordinal} year of the {adj} {noun}, {Name} came to {place} with {np}.",
        "The people of {place} {vtd} {np} {time}.",
        "Nobody knew why.",
        "It rained for {numw} days, and the {nouns} {vid}.",
        "{Name} kept {np} in a {adj} box and told no one.",
        "This is the chronicle of how {Name} {vtd} {np}.",
        "The {trade} of {place} was {adj} and {adj}, and owed {Name} {numw} {nouns}.",
        "Some say it began with {np}; others blame {Name}.",
        "By the {ordinal} day, {np1} was gone.",
    ],
    "title": [
        "THE {NOUN} OF {PLACE}",
        "THE {ADJ} {NOUN}",
        "{NAME} AT {PLACE}",
        "HOW {NAME} {VTD} THE {NOUN}",
        "THE {NOUNS} OF {PLACE}",
    ],
    "song": [
        "O the {adj} {noun} of {place},",
        "and the {nouns} that {vi} in the {weather},",
        "{vt} me a {noun}, my {adj} {kin},",
        "for I {vid} {adv} till the {noun} came home.",
    ],
}
SLOT = re.compile(r"\{(\w+)\}")
ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def expand(rng, text, ctx):
    """Fill every {slot}; an ALL-CAPS or Capitalised slot name is cased to match."""

    def sub(m):
        key = m.group(1)
        for low in (key, key.lower(), key.capitalize()):  # NAME -> Name, NOUN -> noun
            if low in ctx or low in G:
                break
        choice = rng.choice(ctx.get(low) or G[low])
        if "{" in choice:
            choice = expand(rng, choice, ctx)
        if key.isupper() and len(key) > 1:
            return choice.upper()
        return choice[:1].upper() + choice[1:] if key[0].isupper() else choice

    return ARTICLE.sub(r"\1n ", SLOT.sub(sub, text))


def sentence(rng, ctx, key):
    s = expand(rng, rng.choice(G[key]), ctx)
    return s[0].upper() + s[1:]


def speech(rng, ctx, answering):
    """One speech: 1-4 lines of 1-2 sentences each, mostly statements."""
    lines = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        parts = []
        for _ in range(rng.choice((1, 1, 2))):
            r = rng.random()
            kind = "stmt" if r < 0.55 else "ques" if r < 0.78 else "excl" if r < 0.88 else "cmd"
            parts.append(sentence(rng, ctx, kind))
        lines.append(" ".join(parts))
    if answering:  # a question is usually answered, giving speeches some cohesion
        lines[0] = sentence(rng, ctx, "answer") + " " + lines[0]
    if rng.random() < 0.06:
        lines.insert(0, rng.choice(["[Aside.]", "[To %s.]" % rng.choice(ctx["to"]), "[Quietly.]", "[Angrily.]"]))
    if rng.random() < 0.03:  # a short sung verse, indented
        lines += ["[Sings.]"] + ["  " + expand(rng, v, ctx) for v in G["song"]]
    return lines


def scene(rng, number, cast, ctx):
    """A scene: setting, entrances, speeches between on-stage characters, exits."""
    out = ["SCENE %d. %s. %s" % (number, expand(rng, rng.choice(G["setting"]), ctx), rng.choice(G["daytime"])), ""]
    order = cast[:]
    rng.shuffle(order)
    k = rng.choice((2, 2, 3))
    on, off = order[:k], order[k:]
    out += ["[Enter %s and %s.]" % (", ".join(c[0] for c in on[:-1]), on[-1][0]), ""]
    last, answering = None, False
    for _ in range(rng.randint(8, 28)):
        r = rng.random()
        if r < 0.07 and off:  # someone arrives
            c = off.pop(rng.randrange(len(off)))
            on.append(c)
            how = rng.choice(["", ", running", ", with a {noun}", ", wet through", ", unseen"])
            out += ["[Enter %s%s.]" % (c[0], expand(rng, how, ctx)), ""]
        elif r < 0.12 and len(on) > 2:  # someone leaves (keep two to talk)
            c = on.pop(rng.randrange(len(on)))
            if c is last:
                last = None
            off.append(c)
            out += ["[Exit %s.]" % c[0], ""]
        elif r < 0.22:
            body = rng.choice(G["noise"]) if r < 0.15 else "%s {action}." % rng.choice(on)[0]
            out += ["[" + expand(rng, body, ctx) + "]", ""]
        speaker = rng.choice([c for c in on if c is not last])
        others = [c for c in on if c is not speaker]
        ctx["to"] = [c[0] for c in others]
        ctx["addr"] = [c[1] for c in others] * 3 + ["my friend", "neighbour", "old man", "dear"]
        lines = speech(rng, ctx, answering)
        out += [speaker[0] + ":"] + lines + [""]
        last, answering = speaker, lines[-1].endswith("?") and rng.random() < 0.7
    out += ["[Exeunt.]", "", ""]
    return "\n".join(out) + "\n"


def chapter(rng, number):
    """Yield a chapter header with prologue, then its scenes, one string each."""
    names = NAMES[:]
    rng.shuffle(names)
    names = names[: rng.randint(3, 6)]
    cast = [(n.upper(), n) for n in names]
    if rng.random() < 0.5:
        cast.append(rng.choice(ROLES))
    home = rng.choice(PLACES)
    # The chapter's own people and home town dominate, but others are gossiped about.
    ctx = {"Name": names * 3 + NAMES, "place": [home] * 8 + PLACES, "addr": ["friend"]}
    prose = " ".join(sentence(rng, ctx, "narr") for _ in range(rng.randint(2, 5)))
    yield "CHAPTER %d\n%s\n\n%s\n\n\n" % (number, expand(rng, rng.choice(G["title"]), ctx), textwrap.fill(prose, 72))
    for s in range(1, rng.randint(2, 5) + 1):
        yield scene(rng, s, cast, ctx)


def pieces(size, seed=SEED):
    """Yield the corpus in scene-sized strings until at least `size` bytes."""
    rng = random.Random(seed)
    head = "THE SALT MARSH CHRONICLES\n(machine-generated original text)\n\n\n"
    yield head
    total, number = len(head), 0
    while total < size:
        number += 1
        for piece in chapter(rng, number):
            yield piece
            total += len(piece)  # ASCII only, so characters == bytes
            if total >= size:
                break
    yield "THE END\n"


def sha256(blocks):
    h = hashlib.sha256()
    for b in blocks:
        h.update(b)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE, help="approximate bytes")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output path")
    ap.add_argument("--check", action="store_true", help="verify --out matches what would be generated; exit 1 if not")
    args = ap.parse_args(argv)
    if args.check:  # compare digests, so checking a huge file streams too
        want = sha256(p.encode("ascii") for p in pieces(args.size))
        try:
            with open(args.out, "rb") as f:
                have = "sha256 " + sha256(iter(lambda: f.read(1 << 20), b""))
        except OSError as e:
            have = "error (%s)" % e
        if have != "sha256 " + want:
            print("check FAILED: %s: got %s, expected sha256 %s" % (args.out, have, want), file=sys.stderr)
            return 1
        print("ok: %s %s" % (args.out, have))
        return 0
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        for p in pieces(args.size):
            f.write(p)
    print("wrote %s (%d bytes)" % (args.out, os.path.getsize(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
