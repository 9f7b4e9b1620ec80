#!/usr/bin/python3
"""A digits split file (image,label) with a text column added: the digit's parity, a weak hint beside
the image, for the text + image tests.  Usage: digits_text_csv.py IN.csv OUT.csv"""
import csv
import sys

rows = list(csv.reader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "image", "label"])
    for image, label in rows[1:]:
        w.writerow([("an even digit" if int(label) % 2 == 0 else "an odd digit") + " drawn by hand", image, label])
