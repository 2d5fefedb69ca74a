#!/usr/bin/env python3
"""Test sets for the locality measurements (bench/RESULTS.md): facts of mixed kinds, unseen
questions of the same templates, paraphrases of the facts' questions, and unrelated prompts
(generic text and unrelated Q/A-formatted questions, some of them near the facts' wording).
None of these texts appear in the engine's calibration negatives or evaluation defaults.
Usage: make_sets.py OUT_DIR [--seed N] [--facts N] [--unseen N]"""
import argparse, json, os, random

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--seed", type=int, default=99)
p.add_argument("--facts", type=int, default=300)
p.add_argument("--unseen", type=int, default=200)
a = p.parse_args()
rng = random.Random(a.seed)
alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

people = ["Alice", "Bruno", "Chen", "Dara", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Jia", "Kofi", "Lena",
          "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq"]
cities = ["Lisbon", "Osaka", "Nairobi", "Quito", "Tromso", "Adelaide", "Krakow", "Hanoi", "Lagos", "Tbilisi",
          "Cusco", "Tartu", "Porto", "Bergen", "Accra", "Medan"]
things = ["printer", "server", "router", "badge", "locker", "bicycle", "laptop", "keycard"]
# (question, paraphrase) pairs of three kinds: an item's serial, a city office's detail, a project's room.
pool = [(f"What is the serial number of {who}'s {what}?", f"Which serial number does {who}'s {what} have?")
        for who in people for what in things]
pool += [(f"What is the {k} {c}?", f"Tell me the {k} {c}.")
         for c in cities for k in ["postal code of the main office in", "name of the night manager in", "wifi password of the branch in"]]
pool += [(f"Which room hosts project {i * 7 + 3}?", f"Where is project {i * 7 + 3} hosted?") for i in range(300)]
rng.shuffle(pool)
if a.facts + a.unseen > len(pool):
    raise SystemExit(f"at most {len(pool)} facts and unseen questions together")

def answer():
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([12, 20, 32])))

def jsonl(name, rows):
    with open(os.path.join(a.out, name), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)

os.makedirs(a.out, exist_ok=True)
facts = [(q, para, answer()) for q, para in pool[:a.facts]]
jsonl("facts.jsonl", [{"question": q, "answer": ans} for q, _, ans in facts])
jsonl("paraphrases.jsonl", [{"question": para, "answer": ans} for _, para, ans in facts])
jsonl("unseen.jsonl", [{"question": q, "answer": answer()} for q, _ in pool[a.facts:a.facts + a.unseen]])
unrelated = [
    "The history of the printing press begins", "Yesterday I went to the market and bought", "The mitochondria is the powerhouse of",
    "Roses are red, violets are", "To install the package, run", "The stock market fell sharply after",
    "Once, in a faraway kingdom, a young", "The train to Vienna departs from platform", "SELECT * FROM orders WHERE",
    "while True:\\n    x =", "My grandmother always said that", "The final score of the match was", "In the year 1492, Columbus",
    "The experiment showed that the",
    "Q: What is the speed of light?\\nA:", "Q: Who wrote War and Peace?\\nA:", "Q: What is the serial number of the moon?\\nA:",
    "Q: Which room is the kitchen?\\nA:", "Q: What is the postal code of Paris?\\nA:", "Q: How tall is Mount Everest?\\nA:",
    "Q: Name three primary colours.\\nA:", "Q: What is the wifi password?\\nA:", "Q: What is 12 times 12?\\nA:",
    "Q: Who is the night manager?\\nA:",
]
with open(os.path.join(a.out, "unrelated.txt"), "w") as f:
    f.write("\n".join(unrelated) + "\n")
print(f"{len(facts)} facts, {a.unseen} unseen questions, {len(facts)} paraphrases, {len(unrelated)} unrelated prompts in {a.out}")
