// The scripted path's epoch loop: gather, forward, loss (+ L1), backward and optimizer step for every
// batch of an epoch, off the main thread. Progress reaches JS through the worker's progress queue;
// cancel() is honoured between steps.
#pragma once

#include <napi.h>

namespace convscope {
void RegisterTrainer(Napi::Env env, Napi::Object exports);
}
