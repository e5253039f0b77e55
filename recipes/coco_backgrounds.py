"""Links the person-free pictures of ../shared/datasets/coco_tiny into a folder, as replacement
backgrounds for the recipes (links: nothing is copied).

    python recipes/coco_backgrounds.py DATA_DIR OUTPUT_DIR
"""

import json
import os
import sys
from pathlib import Path

data, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for split in ("train2017", "val2017"):
    annotations = data / "coco_tiny/tiny_coco/annotations" / f"instances_{split}.json"
    coco = json.loads(annotations.read_text())
    people = {a["image_id"] for a in coco["annotations"] if a["category_id"] == 1}
    for image in coco["images"]:
        link = out / image["file_name"]
        if image["id"] not in people and not link.exists():
            os.symlink((data / "coco_tiny/tiny_coco" / split / image["file_name"]).resolve(), link)
