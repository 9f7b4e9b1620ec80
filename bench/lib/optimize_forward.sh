# build_optimize_forward OUT_DIR: compiles bench/optimize_forward.cpp against $BUILD's static
# libraries (when it or they changed) into OUT_DIR/optimize_forward and prints its path.
build_optimize_forward() {
  local out="$1" bin="$1/optimize_forward" lib
  for lib in export optimize train artifact prep text data nn core; do
    [[ -e $BUILD/src/$lib/libkiln_$lib.a ]] || die "missing $BUILD/src/$lib/libkiln_$lib.a; build: cmake --build $BUILD --target kiln_export kiln_optimize kiln-env"
  done
  [[ -x $BUILD/kiln-env ]] || die "missing $BUILD/kiln-env; build: cmake --build $BUILD --target kiln-env"
  if [[ ! -e $bin.o || bench/optimize_forward.cpp -nt $bin.o ]]; then
    echo "compiling bench/optimize_forward.cpp ..." >&2
    "${CXX:-g++}" -std=c++17 -O2 -DNDEBUG -Iinclude -I/usr/include/torch/csrc/api/include -c bench/optimize_forward.cpp \
      -o "$bin.o" >&2 || die "compiling optimize_forward failed"
  fi
  if [[ ! -x $bin || $bin.o -nt $bin || $BUILD/src/nn/libkiln_nn.a -nt $bin || $BUILD/src/export/libkiln_export.a -nt $bin || $BUILD/src/optimize/libkiln_optimize.a -nt $bin ]]; then
    "${CXX:-g++}" "$bin.o" \
      "$BUILD/src/export/libkiln_export.a" "$BUILD/src/optimize/libkiln_optimize.a" "$BUILD/src/train/libkiln_train.a" \
      "$BUILD/src/artifact/libkiln_artifact.a" "$BUILD/src/prep/libkiln_prep.a" \
      "$BUILD/src/text/libkiln_text.a" "$BUILD/src/data/libkiln_data.a" "$BUILD/src/nn/libkiln_nn.a" \
      "$BUILD/src/core/libkiln_core.a" -ltorch -ltorch_cpu -lc10 -lyaml-cpp -lpng -ljpeg -pthread -o "$bin" >&2 \
      || die "linking optimize_forward failed"
  fi
  echo "$bin"
}
