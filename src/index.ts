// convscope's public API. Importing it loads no native code: the addon loads on first use, and
// node-canvas only when a picture is drawn.
import { native, NativeTensor, TorchInfo } from './core/native';

export type { NativeTensor, TorchInfo, Dtype, TypedArrayOf } from './core/native';

/**
 * Which libtorch is loaded and what it offers.
 * @example torchInfo() // { version: '1.13.0', cuda: false, threads: 2, libtorchPath: '/usr/lib/...' }
 */
export function torchInfo(): TorchInfo {
  return native().torchInfo();
}

/** Sets libtorch's intra-op thread count (default: the cores this process may use). */
export function setNumThreads(threads: number): void {
  native().setNumThreads(threads);
}

/** Seeds libtorch's default generator (weight initialisation, dropout). */
export function manualSeed(seed: number): void {
  native().manualSeed(seed);
}

/** Native tensors alive right now: a leak test compares it before and after. */
export function liveTensors(): number {
  return native().liveTensors();
}

/** The native Tensor class (advanced use): `new Tensor(new Float32Array([1, 2]), [2])` copies the values. */
export const Tensor = new Proxy(function Tensor() { /* placeholder until the addon loads */ } as unknown as new (data: import('./core/native').TypedArrayOf, shape: number[]) => NativeTensor, {
  construct: (_target, args) => new (native().Tensor)(args[0], args[1]),
  get: (_target, key) => (key === Symbol.hasInstance ? (v: unknown) => v instanceof native().Tensor : Reflect.get(native().Tensor, key)),
});

export { tidy, keep } from './core/tidy';
export { readIdx, writeIdx } from './formats/idx';
export { loadDataset, loadDatasetAsync, DatasetNotFoundError } from './data/datasets';
export { loadImageDataset, resolveImageDatasetOptions, parseImageSize, IMAGE_DATASET_NAMES } from './data/load-image-dataset';
export type { LoadImageDatasetOptions } from './data/load-image-dataset';
export type { Dataset, Split } from './data/dataset-types';
export { CIFAR10_CLASS_NAMES, CIFAR100_FINE_NAMES, CIFAR100_COARSE_NAMES, CIFAR_ARCHIVE_MD5 } from './data/cifar';
export { defaultSpec, planModel, countParameters } from './nn/spec';
export { readSpecFile, SpecFileError } from './nn/spec-file';
export type { CnnSpec, ConvLayerSpec, Activation, Padding } from './nn/spec';
export { CnnModel, createModel } from './nn/model';
export type { ExecutionMode, Classifier, ParameterInfo, BufferInfo } from './nn/model';
export { loadTorchScript, TorchScriptModel } from './nn/torchscript';
export { trainCnn, TrainingAbortedError, TrainingDivergedError } from './train/train-cnn';
export { DistributedError } from './distributed/data-parallel';
export { rankEnvironment, DEFAULT_DIST_TIMEOUT_SECONDS } from './distributed/environment';
export type { DistributedOptions, RankEnvironment } from './distributed/environment';
export type { TrainResult } from './train/train-cnn';
export type { TrainOptions, TrainProgress, EpochRecord } from './train/options';
export { PRESETS, presetOptions } from './train/presets';
export type { PresetName, PresetOptions } from './train/presets';
export { evaluate } from './train/evaluate';
export type { EvaluationResult, EvaluateOptions } from './train/evaluate';
export { saveCheckpoint } from './train/checkpoint';
export { loadModel, loadCheckpoint } from './train/load-model';
export { explain, explanationPixelMaps } from './probe/explain';
export type { Explanation, ExplanationShape } from './probe/explain';
export { writeExplanation } from './probe/folder';
export type { ExplanationSource, ExplanationFiles } from './probe/folder';
export { faithfulness } from './probe/faithfulness';
export type { FaithfulnessOptions, FaithfulnessResult } from './probe/faithfulness';
export { randomisationCheck } from './probe/randomisation';
export type { RandomisationStage } from './probe/randomisation';
export { METHODS as EXPLAIN_METHODS } from './probe/options';
export { maximize } from './probe/maximize';
export type { MaximizeObjective, MaximizeOptions, MaximizeSettings, Visualisation } from './probe/maximize';
export { writeVisualisation } from './probe/probe-folders';
export type { VisualisationFiles } from './probe/probe-folders';
export { datasetExamples } from './probe/dataset-examples';
export type { DatasetExamples, DatasetExamplesOptions, DatasetExample, Crop } from './probe/dataset-examples';
export { writeDatasetExamples } from './probe/probe-folders';
export type { DatasetExampleFiles } from './probe/probe-folders';
export { embeddings, writeProjector, penultimateLayer } from './probe/embeddings';
export type { Embeddings, EmbeddingOptions, ProjectorFiles, ProjectorSource } from './probe/embeddings';
export { attributionSummary, writeSummary } from './probe/summary';
export type { AttributionSummary, SummaryOptions, SummaryFiles } from './probe/summary';
export { mapsAcrossTraining, epochCheckpoints, writeAcrossTraining } from './probe/across-training';
export type { MapsAcrossTraining, AcrossTrainingFiles } from './probe/across-training';
export { road } from './probe/road';
export type { RoadOptions, RoadResult } from './probe/road';
export { layerShapes } from './probe/layer-geometry';
export type { LayerShape, ReceptiveField } from './probe/layer-geometry';
export type { ExplainOptions, MethodName, Target, Baseline, Smoothing, MethodSettings } from './probe/options';
export { renderFilterMosaic } from './viz/mosaic';
export { renderActivations } from './viz/activations';
export { SummaryWriter } from './summary/writer';
export { sweepKernelSizes } from './experiments/sweep-kernel';
export type { KernelSweepOptions, KernelSweepResult, KernelSweepRow } from './experiments/sweep-kernel';
export { findRedundantFilters, redundancyReport } from './experiments/redundancy';
export type { RedundancyOptions, RedundancyResult, SimilarPair, RedundancyReportOptions, RedundancyReport } from './experiments/redundancy';
export { fewerFilters } from './experiments/fewer-filters';
export type { FewerFiltersOptions, FewerFiltersResult, PrunedRow, ScratchRow } from './experiments/fewer-filters';
export { compareRegularization } from './experiments/regularization';
export type { RegularizationOptions, RegularizationResult, RegularizationRow, FilterStatistics } from './experiments/regularization';
export { buildReport } from './experiments/report';
export type { ReportOptions, ReportResult } from './experiments/report';
export type { ExperimentOptions } from './experiments/options';
export type { ResultsTable, ResultsFile } from './experiments/results';
export { tune, TuneAbortedError, TuneIncompleteError } from './tune/tune';
export type { TuneResult } from './tune/tune';
export { DEFAULT_SPACE } from './tune/options';
export type { TuneOptions, PrunerKind, PruningOptions } from './tune/options';
export type { SearchSpace, ParamRange, FiltersValue, TrialParams, SamplerKind } from './tune/space';
export type { TrialResult, TrialStatus, RetrainResult, TuneEvent } from './tune/trial';
export type { BestTrial } from './tune/tune-report';
