#!/usr/bin/python3
"""Golden folded weights for kiln::nn::fold_conv_bn (src/nn/conv_kernel.cpp).

python3-torch's own fusion (torch.nn.utils.fusion.fuse_conv_bn_eval, 1.13) folds an eval-mode
BatchNorm into the preceding convolution:
    W' = W * gamma / sqrt(var + eps)        (per output channel)
    b' = (b - mean) * gamma / sqrt(var + eps) + beta
Cases: a 3x3 convolution without bias (the cnn family's), one with a bias and a non-default eps, and
a 1x1 strided one (a downsample). The C++ test rebuilds each convolution and BatchNorm from the
tensors stored here and must find the same W', b' (and the fused convolution's output on the stored
input must equal conv -> bn). Run: /usr/bin/python3 tests/golden/make_conv_bn_fold_golden.py
"""
import json
import os

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

torch.manual_seed(0)


def case(name, cin, cout, k, stride, pad, bias, eps):
    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias)
    bn = torch.nn.BatchNorm2d(cout, eps=eps)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.2, 2.0)
    conv.eval()
    bn.eval()
    fused = fuse_conv_bn_eval(conv, bn)
    x = torch.randn(2, cin, 6, 6)
    with torch.no_grad():
        want = bn(conv(x))
        got = fused(x)
    assert torch.allclose(want, got, atol=1e-5), name
    flat = lambda t: t.detach().reshape(-1).tolist()
    return {
        "name": name, "in": cin, "out": cout, "kernel": k, "stride": stride, "padding": pad, "eps": eps,
        "conv_weight": flat(conv.weight), "conv_bias": flat(conv.bias) if bias else None,
        "bn_weight": flat(bn.weight), "bn_bias": flat(bn.bias),
        "bn_mean": flat(bn.running_mean), "bn_var": flat(bn.running_var),
        "folded_weight": flat(fused.weight), "folded_bias": flat(fused.bias),
        "input": flat(x), "input_shape": list(x.shape), "output": flat(want), "output_shape": list(want.shape),
    }


cases = [
    case("3x3_no_bias", 3, 4, 3, 1, 1, False, 1e-5),
    case("3x3_bias_eps1e-3", 2, 3, 3, 1, 1, True, 1e-3),
    case("1x1_stride2", 4, 5, 1, 2, 0, False, 1e-5),
]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimize", "conv_bn_fold_golden.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/golden/make_conv_bn_fold_golden.py", "torch": torch.__version__, "cases": cases}, f)
print("wrote", out)
