"""Write the local stand-in data of the LM-Harness tasks (``data/*.jsonl``), deterministically.

    python evaluation/lm_harness_tasks/make_data.py      # rewrites data/; the committed files are its output

Made by this project for offline pipeline checks: small, templated or hand-written items in the record layout of
each Hub dataset that the real lm_eval task reads (ARC, TruthfulQA multiple choice, WinoGrande, GSM8k, HellaSwag,
MMLU), so the stand-in task YAMLs beside this file can use the real tasks' prompts, metrics and filters unchanged.
They are NOT benchmarks: nothing measured on them is comparable with a published number. Every record carries a
``split`` field (train / validation / test / dev) that ``standin.load`` turns into the splits the YAML names.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"
SEED = 20260523


def _mc(rng: random.Random, correct: str, pool: list[str], n: int = 4) -> tuple[list[str], int]:
    """``n`` choices: ``correct`` and ``n - 1`` distinct others from ``pool``, shuffled; the gold index."""
    others = rng.sample([p for p in dict.fromkeys(pool) if p != correct], n - 1)
    choices = others + [correct]
    rng.shuffle(choices)
    return choices, choices.index(correct)


# ---- ARC-Challenge layout: {id, question, choices: {text, label}, answerKey} ------------------------------------
ANIMALS = {
    "mammal": ["dog", "whale", "bat", "horse", "rabbit", "elephant", "mouse", "cow", "dolphin", "goat"],
    "bird": ["eagle", "penguin", "sparrow", "owl", "duck", "parrot", "robin", "swan"],
    "fish": ["salmon", "shark", "trout", "tuna", "goldfish", "cod", "herring"],
    "reptile": ["snake", "lizard", "turtle", "crocodile", "iguana", "gecko"],
    "insect": ["ant", "bee", "beetle", "butterfly", "mosquito", "grasshopper", "ladybug"],
    "amphibian": ["frog", "toad", "salamander", "newt"],
}
MEASURE_TOOL = {"temperature": "thermometer", "length": "ruler", "mass": "balance", "time": "stopwatch",
                "the volume of a liquid": "graduated cylinder", "air pressure": "barometer",
                "wind speed": "anemometer", "the loudness of a sound": "sound level meter"}
UNIT = {"length": "meter", "mass": "kilogram", "time": "second", "temperature": "degree Celsius",
        "electric current": "ampere", "energy": "joule", "force": "newton", "power": "watt"}
STATE = {"iron": "solid", "water": "liquid", "oxygen": "gas", "salt": "solid", "milk": "liquid", "helium": "gas",
         "wood": "solid", "carbon dioxide": "gas", "olive oil": "liquid", "copper": "solid", "nitrogen": "gas",
         "vinegar": "liquid", "glass": "solid", "neon": "gas"}
PLANETS = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]
ORDINAL = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


def arc_items(rng: random.Random) -> list[dict]:
    items = []
    for cls, names in ANIMALS.items():
        others = [a for c, ns in ANIMALS.items() if c != cls for a in ns]
        for name in rng.sample(names, 3):
            q = f"Which of these animals is {'an' if cls[0] in 'aeiou' else 'a'} {cls}?"
            pool = rng.sample(others, 3)
            items.append((q, name, pool))
    for what, tool in MEASURE_TOOL.items():
        items.append((f"Which tool is used to measure {what}?", tool, list(MEASURE_TOOL.values())))
    for what, unit in UNIT.items():
        items.append((f"Which unit is used to measure {what}?", unit, list(UNIT.values())))
    for sub, state in STATE.items():
        items.append((f"At room temperature, {sub} is a", state, ["solid", "liquid", "gas", "plasma"]))
    for i, p in enumerate(PLANETS):
        items.append((f"Which planet is the {ORDINAL[i]} planet from the Sun?", p, PLANETS))
    rng.shuffle(items)
    rows = []
    for n, (q, correct, pool) in enumerate(items):
        choices, gold = _mc(rng, correct, pool + [correct])
        labels = ["A", "B", "C", "D"]
        rows.append({"id": f"standin-arc-{n}", "question": q, "choices": {"text": choices, "label": labels},
                     "answerKey": labels[gold]})
    return rows


# ---- TruthfulQA multiple_choice layout: {question, mc1_targets, mc2_targets} -----------------------------------
# (question, true answers, false answers): common misconceptions, written for this stand-in.
TRUTHFUL = [
    ("What happens if you swallow chewing gum?", ["It passes through your digestive system.",
     "Nothing much; it leaves your body in a few days."], ["It stays in your stomach for seven years.",
     "It sticks to your intestines forever."]),
    ("How long should you wait after eating before you go swimming?", ["You do not need to wait.",
     "There is no rule that you must wait before swimming."], ["You must wait thirty minutes or you will drown.",
     "You must wait at least two hours."]),
    ("What colour is the blood in human veins?", ["It is dark red.", "Blood in veins is red."],
     ["It is blue.", "It is blue until it touches air."]),
    ("Do humans use only ten percent of their brains?", ["No, humans use virtually all of their brain.",
     "No, every part of the brain has a function."], ["Yes, humans use only ten percent of their brains.",
     "Yes, ninety percent of the brain is unused."]),
    ("Can you see the Great Wall of China from the Moon with the naked eye?", ["No, it is far too narrow to see.",
     "No."], ["Yes, it is the only building visible from the Moon.", "Yes."]),
    ("What happens if you crack your knuckles a lot?", ["Nothing in particular happens.",
     "Studies have not found that it causes arthritis."], ["You will get arthritis.",
     "Your joints will wear out."]),
    ("Does lightning ever strike the same place twice?", ["Yes, lightning can strike the same place many times.",
     "Yes, tall buildings are struck again and again."], ["No, lightning never strikes the same place twice."]),
    ("How many senses do humans have?", ["Humans have more than five senses, including balance.",
     "More than five."], ["Humans have exactly five senses.", "Five."]),
    ("What makes a bull charge at a matador's cape?", ["The movement of the cape.",
     "Bulls react to the motion, not the colour."], ["The red colour makes the bull angry.",
     "Bulls hate the colour red."]),
    ("Do goldfish remember things for only three seconds?", ["No, goldfish can remember things for months.",
     "No, their memory lasts much longer."], ["Yes, goldfish forget everything after three seconds."]),
    ("Do hair and nails keep growing after a person dies?", ["No, they stop growing.",
     "No, the skin dries and pulls back, which makes them look longer."], ["Yes, they keep growing for days.",
     "Yes, they grow for weeks after death."]),
    ("Is it dangerous to wake a sleepwalker?", ["No, it is not dangerous, though they may be confused.",
     "No."], ["Yes, waking a sleepwalker can kill them.", "Yes, they can have a heart attack."]),
    ("Does eating sugar make children hyperactive?", ["No, studies have not found that sugar causes hyperactivity.",
     "No."], ["Yes, sugar makes children hyperactive.", "Yes, sugar gives children a rush of energy."]),
    ("What causes the seasons on Earth?", ["The tilt of Earth's axis.",
     "The angle of sunlight changes as Earth orbits with a tilted axis."],
     ["The changing distance between Earth and the Sun.", "Earth is closer to the Sun in summer."]),
    ("Do ostriches bury their heads in the sand when frightened?", ["No, ostriches do not bury their heads.",
     "No, they run away or lie flat."], ["Yes, ostriches hide by burying their heads in the sand."]),
    ("Can a penny dropped from a tall building kill a person on the ground?", ["No, a falling penny is not fast "
     "enough to kill.", "No, it would only sting."], ["Yes, a penny dropped from a skyscraper can kill a person."]),
    ("Do we lose most of our body heat through our heads?", ["No, heat is lost from any uncovered part of the body.",
     "No."], ["Yes, most body heat escapes through the head."]),
    ("Did Albert Einstein fail mathematics at school?", ["No, Einstein did very well in mathematics.", "No."],
     ["Yes, Einstein failed mathematics.", "Yes, he failed maths as a boy."]),
    ("Is the tongue divided into zones for different tastes?", ["No, every taste can be sensed across the tongue.",
     "No, the tongue map is a myth."], ["Yes, sweet is tasted at the tip and bitter at the back."]),
    ("Are bats blind?", ["No, bats can see.", "No, many bats see well and also use echolocation."],
     ["Yes, bats are blind.", "Yes, bats cannot see at all."]),
    ("Does shaving make hair grow back thicker?", ["No, shaving does not change how thick hair grows.", "No."],
     ["Yes, hair grows back thicker after shaving.", "Yes, and it grows back darker."]),
    ("At what temperature does water boil at sea level?", ["At 100 degrees Celsius.", "At 212 degrees Fahrenheit."],
     ["At 90 degrees Celsius.", "At 50 degrees Celsius."]),
    ("Why do chameleons change colour?", ["Mainly to signal to other chameleons and to control their temperature.",
     "Mostly for communication and temperature."], ["Only to blend in with their background.",
     "To become invisible to predators."]),
    ("Which mountain is the tallest above sea level?", ["Mount Everest.", "Everest, in the Himalayas."],
     ["K2.", "Mount Kilimanjaro."]),
]


def truthfulqa_items(rng: random.Random) -> list[dict]:
    rows = []
    for q, true, false in TRUTHFUL:
        mc1 = [true[0]] + false
        mc2 = true + false
        rows.append({"question": q, "mc1_targets": {"choices": mc1, "labels": [1] + [0] * len(false)},
                     "mc2_targets": {"choices": mc2, "labels": [1] * len(true) + [0] * len(false)}})
    return rows


# ---- WinoGrande layout: {sentence with "_", option1, option2, answer "1"|"2"} ---------------------------------
THINGS = [("trophy", "suitcase"), ("ball", "box"), ("book", "drawer"), ("cake", "tin"), ("pillow", "bag"),
          ("guitar", "case")]
PEOPLE = [("Sarah", "Emily"), ("James", "Robert"), ("Maria", "Linda"), ("Kevin", "Brian"), ("Anna", "Laura"),
          ("Tom", "Peter")]


def winogrande_items(rng: random.Random) -> list[dict]:
    rows = []

    def twin(template, a, b, word_a, word_b):
        for word, ans in ((word_a, "1"), (word_b, "2")):
            rows.append({"sentence": template.format(a=a, b=b, w=word), "option1": a, "option2": b, "answer": ans})

    for a, b in THINGS:
        twin("The {a} does not fit in the {b} because the _ is too {w}.", a, b, "big", "small")
    for a, b in PEOPLE[:3]:
        twin("{a} helped {b} with the homework because _ {w}.", a, b, "was good at maths", "was struggling with maths")
        twin("{a} lent some money to {b} because _ {w}.", a, b, "had plenty to spare", "was short of cash")
    for a, b in PEOPLE[3:]:
        twin("{a} was tired but {b} was not, so _ {w}.", a, b, "went to bed early", "stayed up late")
        twin("{a} thanked {b} for the present because _ {w}.", a, b, "liked it a lot", "had chosen it carefully")
    rng.shuffle(rows)
    return rows


# ---- GSM8k layout: {question, answer "...#### N"} --------------------------------------------------------------
NAMES = ["Ann", "Ben", "Carla", "Dev", "Ella", "Farid", "Gina", "Hugo", "Ines", "Jack", "Kira", "Liam"]
PRONOUN = {"Ann": "She", "Ben": "He", "Carla": "She", "Dev": "He", "Ella": "She", "Farid": "He", "Gina": "She",
           "Hugo": "He", "Ines": "She", "Jack": "He", "Kira": "She", "Liam": "He"}
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "shells", "cards"]


def gsm8k_items(rng: random.Random) -> list[dict]:
    rows = []
    kinds = ["add", "sub", "mul", "div", "two_step"]
    for n in range(40):
        kind, name, item = kinds[n % len(kinds)], rng.choice(NAMES), rng.choice(ITEMS)
        he = PRONOUN[name]
        a, b = rng.randint(3, 19), rng.randint(2, 9)
        if kind == "add":
            s = a + b
            q = f"{name} has {a} {item}. {he} buys {b} more. How many {item} does {name} have now?"
            ans = f"{name} has {a} + {b} = <<{a}+{b}={s}>>{s} {item} now.\n#### {s}"
        elif kind == "sub":
            a = a + b
            s = a - b
            q = f"{name} has {a} {item} and gives {b} of them to a friend. How many {item} does {name} have left?"
            ans = f"{name} has {a} - {b} = <<{a}-{b}={s}>>{s} {item} left.\n#### {s}"
        elif kind == "mul":
            s = a * b
            q = f"A box holds {a} {item}. How many {item} are there in {b} boxes?"
            ans = f"There are {a} * {b} = <<{a}*{b}={s}>>{s} {item}.\n#### {s}"
        elif kind == "div":
            total = a * b
            q = f"{name} shares {total} {item} equally among {b} friends. How many {item} does each friend get?"
            ans = f"Each friend gets {total} / {b} = <<{total}/{b}={a}>>{a} {item}.\n#### {a}"
        else:
            c = rng.randint(1, a * b - 1)
            s = a * b - c
            q = f"{name} buys {b} packs of {a} {item} and loses {c} of them. How many {item} does {name} have?"
            ans = (f"{name} buys {b} * {a} = <<{b}*{a}={a * b}>>{a * b} {item}.\n"
                   f"After losing {c}, {name} has {a * b} - {c} = <<{a * b}-{c}={s}>>{s} {item}.\n#### {s}")
        rows.append({"question": q, "answer": ans})
    return rows


# ---- HellaSwag layout: {activity_label, ctx_a, ctx_b, ctx, endings, label} ------------------------------------
ACTIVITIES = [
    ("Making tea", "A woman fills a kettle with water and switches it on.", "she",
     "pours the boiling water over a tea bag in a cup."),
    ("Washing a car", "A man sprays his car with a garden hose.", "he", "scrubs the doors with a soapy sponge."),
    ("Brushing teeth", "A girl squeezes toothpaste onto her toothbrush.", "she",
     "brushes her teeth in front of the mirror."),
    ("Planting a tree", "A woman digs a deep hole in the garden.", "she",
     "places the young tree in the hole and fills it with soil."),
    ("Baking bread", "A baker kneads a ball of dough on the table.", "he", "puts the dough in a hot oven to bake."),
    ("Riding a bike", "A boy puts on his helmet and climbs onto his bike.", "he", "pedals down the street."),
    ("Painting a wall", "A man pours paint into a tray.", "he", "rolls the paint onto the wall."),
    ("Ironing clothes", "A woman lays a shirt flat on the ironing board.", "she",
     "presses the hot iron over the shirt."),
    ("Walking a dog", "A man clips a leash to his dog's collar.", "they", "walk together through the park."),
    ("Making a sandwich", "A boy places two slices of bread on a plate.", "he",
     "spreads butter on the bread and adds cheese."),
    ("Mowing the lawn", "A man starts the lawn mower in the garden.", "he", "pushes the mower across the grass."),
    ("Playing the piano", "A girl sits down at the piano and opens her music book.", "she",
     "plays a song with both hands."),
    ("Fishing", "A man casts his line into the lake.", "he", "waits quietly for a fish to bite."),
    ("Wrapping a gift", "A woman cuts a sheet of wrapping paper.", "she",
     "folds the paper around the box and tapes it shut."),
    ("Shoveling snow", "A man steps outside into the deep snow.", "he", "clears the path with a shovel."),
    ("Doing laundry", "A woman loads dirty clothes into the washing machine.", "she",
     "adds detergent and starts the machine."),
    ("Making pancakes", "A man whisks eggs, milk and flour in a bowl.", "he", "pours the batter into a hot pan."),
    ("Changing a tire", "A woman loosens the nuts on the flat tire.", "she",
     "lifts the car with a jack and takes off the wheel."),
    ("Swimming", "A boy stands at the edge of the pool in his swimsuit.", "he",
     "dives into the water and swims a lap."),
    ("Washing dishes", "A man fills the sink with warm soapy water.", "he",
     "scrubs the plates and puts them on the rack."),
    ("Knitting", "A woman holds two needles and a ball of wool.", "she", "knits another row of the scarf."),
    ("Cleaning windows", "A man sprays cleaner on the glass.", "he", "wipes the window with a cloth."),
    ("Building a snowman", "Two children roll a big ball of snow.", "they",
     "put a smaller ball on top for the head."),
    ("Tying shoes", "A boy puts on his sneakers.", "he", "ties the laces into a bow."),
    ("Cooking pasta", "A woman brings a pot of salted water to a boil.", "she", "adds the pasta and stirs it."),
    ("Reading a book", "A girl sits in an armchair and opens a book.", "she", "turns the pages as she reads."),
    ("Raking leaves", "A man walks into a yard covered in leaves.", "he", "rakes the leaves into a pile."),
    ("Feeding a cat", "A woman opens a can of cat food.", "she", "spoons the food into the cat's bowl."),
    ("Setting the table", "A boy takes plates from the cupboard.", "he",
     "puts a plate and a fork at each seat."),
    ("Cleaning gutters", "A man leans a ladder against the house.", "he",
     "climbs up and scoops the leaves out of the gutter."),
    ("Shaving", "A man spreads shaving cream on his face.", "he", "runs the razor along his cheek."),
    ("Making coffee", "A woman grinds a handful of coffee beans.", "she",
     "puts the grounds in the machine and presses start."),
    ("Juggling", "A man holds three balls in his hands.", "he", "throws them into the air one after another."),
    ("Skateboarding", "A teenager sets his skateboard at the top of the ramp.", "he",
     "rolls down the ramp and turns at the bottom."),
    ("Watering plants", "A girl fills a watering can at the tap.", "she",
     "waters the flowers on the windowsill."),
    ("Packing a suitcase", "A man opens his suitcase on the bed.", "he",
     "folds his clothes and places them inside."),
]


def hellaswag_items(rng: random.Random) -> list[dict]:
    rows = []
    endings = [a[3] for a in ACTIVITIES]
    for n, (label, ctx_a, ctx_b, gold) in enumerate(ACTIVITIES):
        choices, g = _mc(rng, gold, endings)
        rows.append({"ind": n, "activity_label": label, "ctx_a": ctx_a, "ctx_b": ctx_b,
                     "ctx": f"{ctx_a} {ctx_b.capitalize()}", "endings": choices, "label": str(g),
                     "source_id": "gprl-standin", "split_type": "indomain"})
    rng.shuffle(rows)
    return rows


# ---- MMLU layout: {question, subject, choices, answer (int)} ---------------------------------------------------
CAPITALS = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
            "Canada": "Ottawa", "Australia": "Canberra", "Egypt": "Cairo", "Brazil": "Brasilia", "Kenya": "Nairobi",
            "India": "New Delhi", "Norway": "Oslo", "Peru": "Lima", "Greece": "Athens", "Portugal": "Lisbon",
            "Poland": "Warsaw", "Argentina": "Buenos Aires"}


def mmlu_arithmetic(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        op = rng.choice(["+", "-", "x"])
        v = a + b if op == "+" else a - b if op == "-" else a * b
        wrong = {v + 1, v - 1, v + 2, v - 2, v + 10, v * 2 if v else 3} - {v}
        choices, gold = _mc(rng, str(v), [str(w) for w in sorted(wrong)])
        rows.append({"question": f"What is {a} {op} {b}?", "subject": "elementary_arithmetic",
                     "choices": choices, "answer": gold})
    return rows


def mmlu_capitals(rng: random.Random) -> list[dict]:
    rows = []
    for country, city in CAPITALS.items():
        choices, gold = _mc(rng, city, list(CAPITALS.values()))
        rows.append({"question": f"What is the capital of {country}?", "subject": "world_capitals",
                     "choices": choices, "answer": gold})
    rng.shuffle(rows)
    return rows


def split(rows: list[dict], **sizes) -> list[dict]:
    """Tag consecutive runs of ``rows`` with split names, in order (the last split takes the rest)."""
    out, at = [], 0
    names = list(sizes)
    for i, name in enumerate(names):
        end = len(rows) if i == len(names) - 1 else at + sizes[name]
        out += [{**r, "split": name} for r in rows[at:end]]
        at = end
    return out


def main() -> None:
    rng = random.Random(SEED)
    files = {
        "arc_challenge": split(arc_items(rng), train=30, test=None),
        "truthfulqa_mc": split(truthfulqa_items(rng), validation=None),
        "winogrande": split(winogrande_items(rng), train=10, validation=None),
        "gsm8k": split(gsm8k_items(rng), train=10, test=None),
        "hellaswag": split(hellaswag_items(rng), train=12, validation=None),
        "mmlu_elementary_arithmetic": split(mmlu_arithmetic(rng, 29), dev=5, test=None),
        "mmlu_world_capitals": split(mmlu_capitals(rng), dev=5, test=None),
    }
    OUT.mkdir(exist_ok=True)
    for name, rows in files.items():
        (OUT / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        counts = {s: sum(r["split"] == s for r in rows) for s in dict.fromkeys(r["split"] for r in rows)}
        print(f"{name}: {counts}")


if __name__ == "__main__":
    main()
