# Sourced on the GPU machine, after `source .device/on-device.sh`, from the project root: puts what
# scripts/gpu-pack.sh prepared in place. The minimal node_modules (.gpu-carry/node_modules) becomes
# ./node_modules (moved, not linked: Node and jest then resolve exactly as here), the xz-compressed
# Fashion-MNIST files in .gpu-data/ are decompressed next to themselves (the loader reads raw IDX
# files), and CONVSCOPE_DATA / CONVSCOPE_PYTHON point at them and at the machine's PyTorch.
# Safe to source again on a warm machine: each call carries fresh copies of .gpu-carry and .gpu-data.
if [ -d .gpu-carry/node_modules ]; then
  rm -rf node_modules && mv .gpu-carry/node_modules node_modules
fi
[ -f node_modules/jest/bin/jest.js ] || echo "gpu-unpack: node_modules is missing or incomplete: carry .gpu-carry (scripts/gpu-pack.sh)" >&2
for f in .gpu-data/*.xz; do
  [ -e "$f" ] && xz -d -f "$f"
done
export CONVSCOPE_DATA=$PWD/.gpu-data
export CONVSCOPE_PYTHON=${CONVSCOPE_PYTHON:-$(command -v python3)}
echo "gpu-unpack: $(ls node_modules | wc -l) packages in node_modules; data: $(ls .gpu-data | tr '\n' ' '); python: $CONVSCOPE_PYTHON"
