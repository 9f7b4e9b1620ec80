#!/usr/bin/python3
"""Writes a small three-topic text CSV (text,label) for the CLI tests: eight words per row, four from
the topic and four common ones. Every EVERY-th row is labelled EXTRA, so that class counts differ
(balanced class weights then differ per class).

    topic_csv.py OUT.csv ROWS SEED EVERY EXTRA
"""
import csv
import random
import sys

out, rows, seed, every, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
random.seed(seed)
words = {"sports": "goal match team score league coach player win season stadium".split(),
         "cooking": "recipe oven salt butter flour bake pan sauce garlic onion".split(),
         "finance": "stock market bank rate loan bond price invest fund profit".split()}
common = "the a of and to in is it was for".split()
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for i in range(rows):
        label = list(words)[i % 3] if i % every else extra
        toks = random.sample(words[label], 4) + random.sample(common, 4)
        random.shuffle(toks)
        w.writerow([" ".join(toks), label])
