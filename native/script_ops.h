// convscope's own operators for the scripted graph: the training form of the TorchScript source
// (src/nn/script-source.ts) calls them as convscope.NAME (script_model.cc resolves the name). The exported TorchScript never
// does, so that plain PyTorch loads it.
#pragma once

namespace convscope {

// Registers the convscope:: operators with libtorch's dispatcher, once per process (the addon may be
// initialised again, by another context of the same process). Throws if the namespace is taken.
void RegisterScriptOps();

}  // namespace convscope
