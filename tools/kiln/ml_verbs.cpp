#include "verbs.h"

#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace kiln::cli {

const std::vector<MlVerb>& ml_verbs() {
  static const std::vector<MlVerb> verbs = {
      {"train", "Train a text classifier and save it as an artifact"},
      {"evaluate", "Evaluate an artifact on a labelled file: metrics table and JSON"},
      {"predict", "Predict labels for texts with a trained artifact (one JSON line each)"},
      {"run", "The whole flow: fetch a dataset, prepare, train, evaluate on the test split"},
      {"serve", "Serve an artifact over HTTP with dynamic batching and Prometheus metrics"},
      {"optimize", "int8 variant of an artifact (dynamic or calibrated static), gated on held-out macro-F1"},
      {"export", "Export an artifact's model as ONNX (opset 14+) for ONNX Runtime, TensorRT or Triton"},
      {"doctor", "Check this machine and build: CPU, BLAS kernels, threads, GEMM speed against peak"},
      {"pretrain", "Pretrain a BERT from scratch on unlabelled text (masked LM); writes a Hugging Face-layout model"},
      {"explain", "Explain predictions: exact linear SHAP, Kernel SHAP, Owen values, integrated gradients"},
      {"embed", "Embed texts with an artifact or a Hugging Face BERT directory (JSON lines or .npy)"},
      {"learn", "Keep an artifact learning from labelled feedback: replay buffer, gated updates, drift detection"},
  };
  return verbs;
}

const char* ml_verb_description(const std::string& name) {
  for (const auto& v : ml_verbs()) {
    if (name == v.name) return v.description;
  }
  return "";
}

std::string find_verb(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads") {
      ++i;  // skip its value
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return a;
  }
  return "";
}

std::string kiln_ml_path() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = ".";
  if (n > 0) {
    self[n] = '\0';
    dir = self;
    dir = dir.substr(0, dir.find_last_of('/'));
  }
  return dir + "/kiln-ml";
}

int exec_ml_binary(char** argv) {
  const std::string ml = kiln_ml_path();
  argv[0] = const_cast<char*>(ml.c_str());
  ::execv(ml.c_str(), argv);
  std::cerr << "kiln: error: cannot start " << ml << ": " << std::strerror(errno)
            << "; the model verbs live in kiln-ml next to kiln: rebuild (scripts/setup.sh) or reinstall both\n";
  return 1;
}

[[noreturn]] void hand_over_to_ml() {
  std::vector<char*> argv;
  for (const auto& a : process_arguments()) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  std::exit(exec_ml_binary(argv.data()));
}

}  // namespace kiln::cli
