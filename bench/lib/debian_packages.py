"""Writes a labelled CSV of Debian package descriptions (text = the one-line description, label =
the package's section) from `apt-cache dumpavail`, the machine's apt lists: a development set of
short, definition-like texts with many classes for bench/select_vs_fasttext.sh. Descriptions shared
by several packages appear once, with their most common section; sections with fewer than 20
descriptions are left out.

Usage: debian_packages.py OUT.csv
"""
import collections
import csv
import subprocess
import sys


def main():
    dump = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True).stdout.decode("utf-8", "replace")
    sections = collections.defaultdict(collections.Counter)
    for record in dump.split("\n\n"):
        fields = {}
        for line in record.splitlines():
            if line and not line[0].isspace():
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        text, section = fields.get("Description"), fields.get("Section")
        if text and section:
            sections[text][section.split("/")[-1]] += 1
    rows = [(text, counts.most_common(1)[0][0]) for text, counts in sections.items()]
    per_label = collections.Counter(label for _, label in rows)
    with open(sys.argv[1], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for text, label in rows:
            if per_label[label] >= 20:
                w.writerow([text, label])


if __name__ == "__main__":
    main()
