"""The peer for `lookalike hash` as a whole process: a plain imagehash pHash script, one process.

    python benchmarks/imagehash_phash.py FILE...    # prints path,phash per file
"""

import sys

import imagehash
from PIL import Image

for path in sys.argv[1:]:
    try:
        with Image.open(path) as im:
            print(f"{path},{imagehash.phash(im)}")
    except Exception as e:  # what a plain script does: report and go on
        print(f"{path},error: {e}")
