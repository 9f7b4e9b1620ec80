#!/usr/bin/python3
"""ONNX Runtime's dynamic int8 graph of a kiln export model, as the issue's anchors were made:
each MatMul by a constant weight becomes com.microsoft DynamicQuantizeMatMul with int8 symmetric
weights (one scale per tensor) and the following bias Add folded in. Debian python3-onnx only.
Usage: ort_quantize.py IN.onnx OUT.onnx"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

m = onnx.load(sys.argv[1])
g = m.graph
inits = {t.name: t for t in g.initializer}
consumers = {}
for n in g.node:
    for i in n.input:
        consumers.setdefault(i, []).append(n)
new_nodes, drop, replaced = [], set(), 0
for n in g.node:
    if id(n) in drop:
        continue
    if n.op_type == "MatMul" and n.input[1] in inits and len(numpy_helper.to_array(inits[n.input[1]]).shape) == 2:
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        scale = max(float(np.abs(w).max()) / 127.0, 1e-12)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        base = n.input[1]
        g.initializer.extend([numpy_helper.from_array(q, base + ".int8"),
                              numpy_helper.from_array(np.array(scale, dtype=np.float32), base + ".scale"),
                              numpy_helper.from_array(np.array(0, dtype=np.int8), base + ".zp")])
        inputs = [n.input[0], base + ".int8", base + ".scale", base + ".zp"]
        out = n.output[0]
        users = consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == "Add":
            add = users[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            if other in inits and numpy_helper.to_array(inits[other]).ndim == 1:
                inputs.append(other)
                out = add.output[0]
                drop.add(id(add))
        new_nodes.append(helper.make_node("DynamicQuantizeMatMul", inputs, [out], name=n.name + ".q", domain="com.microsoft"))
        replaced += 1
    else:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        new_nodes.append(c)
del g.node[:]
g.node.extend(new_nodes)
used = {i for n in g.node for i in n.input}
keep = [t for t in g.initializer if t.name in used]
del g.initializer[:]
g.initializer.extend(keep)
m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
onnx.save(m, sys.argv[2])
print(f"{replaced} MatMuls -> DynamicQuantizeMatMul", file=sys.stderr)
