// The scripted training step captured in one CUDA graph and replayed for every full batch: gather
// (through a static index buffer), forward, loss, backward and the optimizer's update become one
// graph launch instead of a few hundred kernel launches from the host. Compiled only with the CUDA
// sources (CONVSCOPE_CUDA_SOURCES); this header names no CUDA type, so trainer.cc can include it.
//
// How a run uses it: TS creates one StepGraph per run (cuda.StepGraph, disposed when the run ends) and
// passes it with every segment of every epoch. The first kWarmupSteps full batches run plainly on the
// graph's side stream (cuBLAS and cuDNN set up their workspaces, TorchScript's profiling executor
// settles), the next one is captured and replayed, and every later full batch is a replay. Batches
// of another size (the last, partial one) run plainly with the same optimizer update, outside the
// graph. Anything the graph read changing (weights or optimizer state replaced, another dataset or
// batch size) drops it and the next segment captures anew.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>

#include "../reducer.h"
#include "../train_step.h"

namespace convscope {

class GraphedStep;

// The StepRunner for one segment of an epoch on `graph`. Must be destroyed on the thread that made it.
// With `reducer` (a data-parallel run) the step is captured as two graphs, backward's and the
// update's, and the gradients are averaged over the reducer's group between their replays
// (BucketedAverage, reducer.h): beside the graph, as the Reducer's hooks do not run in a replay.
std::unique_ptr<StepRunner> OpenGraphedSegment(std::shared_ptr<GraphedStep> graph, StepInputs& inputs,
                                               std::shared_ptr<torch::optim::Optimizer> optimizer, int64_t batchSize,
                                               std::shared_ptr<GradientReducer> reducer = nullptr);

// The GraphedStep behind a JS StepGraph; throws a TypeMismatch naming `name` for anything else.
std::shared_ptr<GraphedStep> GraphedStepFrom(const Napi::Value& value, const char* name);

// StepGraphs alive in the process (disposed ones still held by a running epoch included).
int64_t LiveGraphCount();

// Adds StepGraph and liveGraphs() to the `cuda` namespace object.
void RegisterGraphStep(Napi::Env env, Napi::Object cuda);

}  // namespace convscope
