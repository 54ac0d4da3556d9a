"""The paper's experiments, by name: `sgt reproduce NAME` runs `REGISTRY[NAME]` (runner + report).

Experiments use the library; the library never uses them. `compare` is what `sgt train` runs.
A new experiment is one module with `add_arguments(parser)` and `reproduce(args) -> str` (the text to
print) plus one `register` call (docs/extending.md).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable

from sgt._registry import Registry
from sgt.experiments import (
    cifar10,
    eraser,
    mnist,
    mnist_timeseries,
    shapes,
    timeseries,
    vanishing,
)
from sgt.experiments.comparison import compare, compare_methods, format_table


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A reproducible experiment: its one-line help, its flags and its runner + report."""

    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    reproduce: Callable[[argparse.Namespace], str]
    help: str = ""


REGISTRY = Registry("experiment", Experiment, {
    "timeseries": Experiment(
        "Table 2: Diff(AUP), Diff(AUR) vs random on the synthetic benchmark", timeseries.add_arguments,
        timeseries.reproduce,
        "Trains every (dataset, model, seed) ordinarily and with saliency guided training, attributes the "
        "test set with six methods and writes table2.{csv,md} and table2.png. Finished runs are cached in "
        "OUT/cache, so a stopped run resumes."),
    "timeseries-ablation": Experiment(
        "Table 2's gap to the paper, one difference at a time: named variants of the time-series runner",
        timeseries.add_ablation_arguments, timeseries.reproduce_ablation,
        "Runs the named variants of the time-series benchmark on seed 100 (the TCN: all 70 datasets, the "
        "benchmark's 500-epoch budget, float64, cross-entropy on softmax outputs, k and fill; the LSTM on two "
        "datasets: k × ranking × fill × λ), each record in its own process, cached and resumable, and writes "
        "ablation.{md,csv}: Diff(AUP), Diff(AUR) of Trad and Sal per variant and the sign agreement of Sal − Trad "
        "with the paper's. --list shows the variants."),
    "vanishing": Experiment(
        "Fig. 6: AUP/AUR of the LSTM's saliency for early, middle and late boxes", vanishing.add_arguments,
        vanishing.reproduce,
        "TopBox / MiddleBox / BottomBox (100×100), LSTM and LSTM with input-cell attention (r = 20), ordinary "
        "vs saliency guided; writes vanishing.{csv,md} and vanishing.png."),
    "mnist": Experiment(
        "Figs. 2-4 on MNIST: accuracy as salient pixels are removed, ROAR, maps and sparsity", mnist.add_arguments,
        mnist.reproduce,
        "Trains the MNIST CNN ordinarily and with saliency guided training per seed, ranks the pixels of a fixed "
        "test subset with six saliency methods and a random ranking, and records the accuracy as the top "
        "fraction is replaced by the background (Fig. 3) or, for the ordinary model's gradient, by the mean and "
        "with ROAR retraining (Fig. 4); also maps, gradient distributions and Gini sparsity. Writes mnist.md, "
        "fig3_*.csv, fig4.csv, sparsity.csv and fig3.png, fig4.png, maps.png, gradients.png. Trained models and "
        "curves are cached in OUT/cache, so a stopped run resumes."),
    "cifar10": Experiment(
        "Fig. 2B/2C on CIFAR-10: gradient maps, gradient distributions and sparsity, ordinary vs SGT",
        cifar10.add_arguments, cifar10.reproduce,
        "Trains a CIFAR ResNet (ResNet-20 by default) ordinarily and with saliency guided training per seed (SGD "
        "momentum 0.9, weight decay 1e-4, pad-4 crop + flip augmentation, model selection on a validation split of "
        "train), takes the gradient of the true class's logit on a fixed test subset and writes cifar10.md, "
        "sparsity.csv (Gini index and share of near-zero pixels), maps.png (Fig. 2B) and gradients.png (Fig. 2C). "
        "Trained models and records are cached in OUT/cache, so a stopped run resumes."),
    "mnist-timeseries": Experiment(
        "Fig. 5: saliency maps of MNIST read as a time series, four sequence models, ordinary vs SGT",
        mnist_timeseries.add_arguments, mnist_timeseries.reproduce,
        "Reads each MNIST image as 28 time steps (rows) of 28 features (columns), trains the LSTM, the LSTM "
        "with input-cell attention, the TCN and the Transformer ordinarily and with saliency guided training, "
        "attributes a fixed test subset with Grad, DeepLIFT, GradientSHAP and DeepLIFT-SHAP and scores each "
        "map's sparsity by its Gini index. Writes mnist_timeseries.md, mnist_timeseries.csv and fig5.png; "
        "models and map records are cached in OUT/cache, so a stopped run resumes."),
    "eraser": Experiment(
        "Table 1: ERASER comprehensiveness and sufficiency of Grad, IG and SmoothGrad on a BiLSTM",
        eraser.add_arguments, eraser.reproduce,
        "Trains a BiLSTM on frozen GloVe vectors ordinarily and with saliency guided training per seed (Movies: "
        "train/val/test; FEVER and e-SNLI: trained on their validation/dev file, tested on test), ranks the tokens "
        "of every test text by Grad, IG and SmoothGrad of the predicted class and a random ranking, and writes "
        "the AOPC comprehensiveness and sufficiency beside the paper's numbers (table1_<task>.{md,csv}), the "
        "plausibility against Movies' human rationales, and highlights_<task>.png. Models and records are cached "
        "in OUT/cache, so a stopped run resumes."),
    "shapes": Experiment(
        "Saliency against known object masks on \"shapes\": six methods, ordinary vs SGT", shapes.add_arguments,
        shapes.reproduce,
        "Trains the shapes model (small_cnn, the dataset's defaults) ordinarily and with saliency guided training "
        "per seed on one fixed generated set, attributes the true label of a fixed test subset with the MNIST "
        "experiment's six methods (IG/DeepLIFT from the black image, SHAP pool of 10 training images) and scores "
        "each map against the object masks: mass inside the object, AUP and AUR, and the removal-curve area "
        "(pixels set to black), beside a blind map (random ranking). Writes shapes.md, shapes.csv, accuracy.csv "
        "and shapes.png; models and records are cached in OUT/cache, so a stopped run resumes."),
})


register, unregister = REGISTRY.register, REGISTRY.unregister

__all__ = ["Experiment", "REGISTRY", "compare", "compare_methods", "format_table", "register", "unregister"]
