#!/usr/bin/python3
"""Goldens for the image preprocessor's resize (tests/prep/image_features_test.cpp), from Debian's
python3-torch: torch.nn.functional.interpolate(mode="bilinear", align_corners=False), and for
"center_crop" torchvision's Resize(shorter side) + CenterCrop arithmetic written out.
Run: /usr/bin/python3 tests/golden/make_image_golden.py > tests/golden/image/resize_golden.json"""
import json

import torch
import torch.nn.functional as F


def source(c, h, w):
    # The same pattern the C++ test builds: value (k * 37 + 11) % 256 / 255 over CHW order.
    n = c * h * w
    return (torch.arange(n, dtype=torch.int64) * 37 + 11).remainder(256).to(torch.float32).div(255).view(c, h, w)


def resize(x, height, width, policy):
    h, w = x.shape[1], x.shape[2]
    if policy == "stretch":
        sh, sw = height, width
    else:
        scale = max(height / h, width / w)
        sh, sw = max(height, int(h * scale + 0.5)), max(width, int(w * scale + 0.5))
    y = x if (sh, sw) == (h, w) else F.interpolate(x[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
    top, left = (sh - height) // 2, (sw - width) // 2
    return y[:, top:top + height, left:left + width]


cases = []
for (c, h, w, height, width, policy) in [(1, 5, 7, 3, 4, "stretch"), (3, 6, 9, 4, 4, "center_crop"),
                                         (1, 4, 6, 8, 8, "center_crop"), (3, 3, 3, 7, 5, "stretch")]:
    y = resize(source(c, h, w), height, width, policy)
    cases.append({"channels": c, "height": h, "width": w, "out_height": height, "out_width": width,
                  "policy": policy, "values": [round(float(v), 9) for v in y.flatten()]})
print(json.dumps({"generator": "tests/golden/make_image_golden.py", "torch": torch.__version__, "cases": cases}))
