"""Write notebooks/04_optimisation_loop.ipynb and notebooks/05_style_sliders.ipynb from the text below.

The notebooks are stored stripped of outputs (execution_count null) with
stable cell ids, so regenerating them gives a clean diff. Run from anywhere:

    python tools/make_notebooks_04_05.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/nst-helpers/nst-helpers/blob/main/notebooks/{name})")
SETUP = '''\
# Setup: in Colab, install the companion package (Colab already has torch/torchvision; they are kept).
import sys
if "google.colab" in sys.modules:
    %pip install -q "nst-helpers @ git+https://github.com/nst-helpers/nst-helpers"'''


def notebook(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, (kind, source) in enumerate(cells):
        source = source.strip("\n").replace("{BADGE}", BADGE.format(name=name))
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        cell.id = str(index)  # what nbstripout (the pre-commit hook) would set
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


NB04 = [
("md", r"""
# 04 · The optimisation loop

The previous notebooks built the pieces: VGG features with the paper's layer names, the content loss, Gram
matrices and the style loss. Here they come together in the loop that actually paints the picture. Gatys,
Ecker & Bethge do not train a network: they keep VGG frozen and change the *pixels* of an image until its
features match the photograph's content and the painting's style. We write that loop out in full once
(targets, an L-BFGS closure that counts evaluations, clamping), check that `nst.stylize` computes exactly the
same losses, and then use the package to watch a run live, compare L-BFGS with Adam, change the balance
between content and style, move to a GPU and save the result.

{BADGE}
"""),
("code", SETUP),
("code", '''
import os
import torch
import matplotlib.pyplot as plt
import nst_helpers as nst

QUICK = os.environ.get("NST_QUICK") == "1"   # set by `make test`: tiny images, few steps
device = nst.pick_device()                    # CUDA → MPS → CPU
SIZE = 64 if QUICK else (512 if device.type == "cuda" else 256)
STEPS = 15 if QUICK else 300                  # VGG evaluations per run
print(f"device: {device}, quick mode: {QUICK}, image size: {SIZE}, steps: {STEPS}")
'''),
("md", r"""
## The images and the network

The paper's Figure 2 pair: the Neckarfront in Tübingen and Van Gogh's *The Starry Night*. Images are tensors
`[1, 3, H, W]` with values in [0, 1]; the feature extractor does its own input normalisation.
`nst.load_vgg(device=device)` gives torchvision's VGG19 with its ImageNet weights, frozen.
"""),
("code", '''
model = nst.load_vgg(device=device)
content = nst.load_image(nst.sample_image("tubingen"), max_size=SIZE).to(device)
style = nst.load_image(nst.sample_image("starry_night"), max_size=SIZE).to(device)
for name in ("tubingen", "starry_night"):
    print(nst.SAMPLES[name].credit)
print("content", tuple(content.shape), "style", tuple(style.shape))

assert content.shape[:2] == (1, 3) and max(content.shape[-2:]) == SIZE
assert 0 <= content.min() and content.max() <= 1
figure = nst.show_images([content, style], ["content: Tübingen", "style: The Starry Night"])
'''),
("md", r"""
## The objective

We minimise Eq. (7) of the paper, plus an optional smoothness term:

$$L_{total}(\vec x) = \alpha\, L_{content}(\vec p, \vec x) + \beta\, L_{style}(\vec a, \vec x) + \gamma\, L_{TV}(\vec x)$$

* **content**: features of `relu4_2` (the paper's conv4_2, after its ReLU), relative squared error
  $\|F - P\|^2 / \|P\|^2$;
* **style**: $\sum_l w_l \|G^l - A^l\|^2 / \|A^l\|^2$ over `relu1_1` … `relu5_1`, with $w_l = 1/5$;
* **TV** (total variation): the mean squared difference between neighbouring pixels. It is not in the paper;
  a small weight suppresses high-frequency noise, and $\gamma = 0$ switches it off.

The losses are *relative*: 1 for features that are all zero, 0 for a perfect match, whatever the network or
the image size. That is why $\alpha = 1$, $\beta = 10$ work for VGG19 and VGG16 alike (the package's defaults).
"""),
("code", '''
CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = dict(nst.DEFAULT_STYLE_LAYERS)      # relu1_1 ... relu5_1, w_l = 0.2 each
ALPHA, BETA, GAMMA = 1.0, 10.0, 1.0                # content, style and TV weights (GAMMA = 0: no TV term)
LAYERS = list(dict.fromkeys(CONTENT_LAYERS + tuple(STYLE_LAYERS)))
print("layers:", LAYERS)
'''),
("md", r"""
### Targets: once, and without gradients

The content features $P$ and the style Gram matrices $A$ do not depend on the image we optimise. Computing
them once, before the loop, saves two VGG passes per step. Computing them under `torch.no_grad()` stops
autograd from recording the graph of those passes, which we would never backpropagate through (the stored
activations are most of the memory a VGG pass needs).
"""),
("code", '''
with torch.no_grad():
    content_targets = model(content, CONTENT_LAYERS)
    style_grams = {name: nst.gram_matrix(features) for name, features in model(style, list(STYLE_LAYERS)).items()}

for name, gram in style_grams.items():
    print(f"{name}: Gram matrix {tuple(gram.shape)}")
assert not any(t.requires_grad for t in [*content_targets.values(), *style_grams.values()])
'''),
("md", r"""
### The loss of one image

One function computes the three weighted terms from a single VGG pass (the content and style layers are
read from the same forward pass). It returns them separately so that we can log one curve per term.
"""),
("code", '''
def weighted_losses(image):
    """α·content, β·style and γ·TV losses of `image` ([1, 3, H, W] in [0, 1]), from one VGG pass."""
    features = model(image, LAYERS)
    content_term = sum(nst.content_loss(features[n], content_targets[n]) for n in CONTENT_LAYERS) / len(CONTENT_LAYERS)
    style_term = nst.style_loss(features, style_grams, STYLE_LAYERS)
    return {"content": ALPHA * content_term, "style": BETA * style_term, "tv": GAMMA * nst.tv_loss(image)}

at_start = {name: value.item() for name, value in weighted_losses(content).items()}
print(at_start)
assert at_start["content"] < 1e-6 and at_start["style"] > 0   # the photo matches its own content exactly
'''),
("md", r"""
## The loop, written out

* **The pixels are the parameters.** `x` starts as a copy of the content image with `requires_grad=True`.
  (The paper starts from white noise; starting from the photo converges in fewer steps. `init="noise"` in
  the package gives the paper's choice.)
* **L-BFGS needs a closure.** Within one `optimizer.step(closure)` it evaluates the loss several times: its
  line search tries step lengths until the loss has dropped enough. So it asks for a function that
  recomputes loss and gradient at the current `x`.
* **Count evaluations, not iterations.** Each closure call is one VGG forward and backward pass, the real
  unit of cost; `max_iter` counts iterations, and one iteration can take several evaluations. The package
  calls one evaluation a *step*, so 300 steps cost the same with L-BFGS as with Adam. We give each `step()`
  call at most `CHUNK` evaluations, never more than what is left of the budget.
* **Clamp between `optimizer.step` calls, not inside the closure.** L-BFGS remembers where it evaluated and
  the gradient there, and builds its curvature estimate from the differences. If the closure clamped `x`,
  the point it evaluated would not be the point it stepped to: the line search and the curvature pairs would
  describe a different image, and convergence suffers. So L-BFGS works unconstrained for a chunk of
  evaluations, and then we clamp to [0, 1] once, under `no_grad` because clamping is not part of the loss.
* **Tell L-BFGS that the clamp moved the point.** The next `step()` builds its first curvature pair from
  its last step $s = t \cdot d$ (kept in `optimizer.state[x]` as `"d"` and `"t"`) and the change of the
  gradient since that step began. After a clamp the gradient is measured at the clamped point, which $s$ does
  not reach, so that pair is wrong. At 256 px this showed as loss spikes of up to $10^5$ right after some
  clamps. Adding the clamp's displacement to the stored step makes the pair exact: no more spikes, and a
  slightly lower final loss.
* `line_search_fn="strong_wolfe"`: without it, PyTorch's L-BFGS takes fixed steps of length `lr` and can blow up.
"""),
("code", '''
HAND_STEPS = 10 if QUICK else 20     # VGG evaluations of the hand-written run
CHUNK = 5                            # evaluations per optimizer.step call; we clamp after each call

x = content.clone().requires_grad_(True)          # the pixels are what we optimise
optimizer = torch.optim.LBFGS([x], lr=1.0, history_size=50, line_search_fn="strong_wolfe")
hand_history = {"content": [], "style": [], "tv": [], "total": []}
evaluations = 0

def closure():
    """One evaluation: loss and gradient at the current x. L-BFGS may call this several times per step."""
    global evaluations
    optimizer.zero_grad()
    terms = weighted_losses(x)
    total = terms["content"] + terms["style"] + terms["tv"]
    total.backward()
    evaluations += 1
    for name, value in terms.items():
        hand_history[name].append(value.item())
    hand_history["total"].append(total.item())
    return total

def clamp_between_steps():
    """Clamp x to [0, 1] and add that move to L-BFGS's last step t·d, so its next curvature pair stays exact."""
    with torch.no_grad():
        before = x.detach().clone()
        x.clamp_(0, 1)
        state = optimizer.state[x]
        if state.get("d") is not None and state.get("t"):
            state["d"].add_((x - before).view(-1), alpha=1.0 / float(state["t"]))

while evaluations < HAND_STEPS:
    budget = min(CHUNK, HAND_STEPS - evaluations)
    optimizer.param_groups[0].update(max_iter=budget, max_eval=budget)
    optimizer.step(closure)          # a line search may still take an evaluation or two more
    clamp_between_steps()            # between steps, never inside the closure

totals = hand_history["total"]
print(f"{evaluations} evaluations: total loss {totals[0]:.4f} → {totals[-1]:.4f}")
assert len(totals) == evaluations >= HAND_STEPS
assert totals[-1] < totals[0]
'''),
("md", r"""
### The same loop, from the package

`nst.stylize` runs this loop, plus what a tool needs: an exact evaluation budget, the best image seen so
far, a callback for previews, handling of Ctrl-C / Jupyter's Stop, and no `.item()` per step (each one
waits for the GPU). Given the same settings (`preview_every` is its chunk length) it computes the same
losses. The first evaluation is the very same computation and must agree to rounding. After that, the two
runs add up the same numbers in a slightly different order, and L-BFGS's line search can amplify such
differences in the last digits, so we only ask the final losses to be close; the exact check follows with Adam.

One setting matters for an exact comparison. By default `stylize` runs the VGG pass the fastest way the
hardware allows: bfloat16 where the chip computes it natively (recent GPUs and some CPUs), Winograd
convolutions on a CPU, channels-last memory layout on a GPU. Those change the losses in the third or fifth
digit, which is harmless for the picture but not the same computation as our loop. `PLAIN_VGG` asks for the
plain float32 pass that `model(...)` does above.
"""),
("code", '''
PLAIN_VGG = dict(precision="fp32", winograd=False, channels_last=False)   # the VGG pass exactly as model(...) runs it

package = nst.stylize(content, style, model=model, steps=HAND_STEPS, preview_every=CHUNK,
                      optimizer="lbfgs", lr=1.0, init="content",
                      content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                      content_weight=ALPHA, style_weight=BETA, tv_weight=GAMMA, device=device, **PLAIN_VGG)
n = package.steps
print("hand-written:", [round(v, 4) for v in hand_history["total"][:6]], "...", round(hand_history["total"][n - 1], 4))
print("package:     ", [round(v, 4) for v in package.history["total"][:6]], "...", round(package.history["total"][-1], 4))

assert n == HAND_STEPS and package.completed
assert abs(package.history["total"][0] - hand_history["total"][0]) <= 1e-5 * hand_history["total"][0]
assert abs(package.history["total"][-1] - hand_history["total"][n - 1]) <= 0.05 * hand_history["total"][n - 1]
'''),
("md", r"""
### Exactly, with Adam

Adam has no line search: each step is a smooth function of the gradient, so rounding differences stay
rounding differences, and the hand-written loop and the package agree step by step. The loop is also
simpler: no closure, one evaluation per step, and clamping after every step is harmless because Adam keeps
no curvature pairs that a clamp could make inconsistent.
"""),
("code", '''
ADAM_STEPS, ADAM_LR = 5, 0.02

x = content.clone().requires_grad_(True)
adam_optimizer = torch.optim.Adam([x], lr=ADAM_LR)
adam_totals = []
for _ in range(ADAM_STEPS):
    adam_optimizer.zero_grad()
    total = sum(weighted_losses(x).values())
    total.backward()
    adam_totals.append(total.item())
    adam_optimizer.step()
    with torch.no_grad():
        x.clamp_(0, 1)

package_adam = nst.stylize(content, style, model=model, steps=ADAM_STEPS, preview_every=ADAM_STEPS,
                           optimizer="adam", lr=ADAM_LR, init="content",
                           content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                           content_weight=ALPHA, style_weight=BETA, tv_weight=GAMMA, device=device, **PLAIN_VGG)
print("hand-written:", [round(v, 5) for v in adam_totals])
print("package:     ", [round(v, 5) for v in package_adam.history["total"]])
assert torch.allclose(torch.tensor(package_adam.history["total"]), torch.tensor(adam_totals), rtol=1e-4)
assert adam_totals[-1] < adam_totals[0]
'''),
("md", r"""
## Watching it run

`nst.LivePreview()` is a callback: `stylize` calls it every `preview_every` steps with the current image and
the loss history. In a notebook it shows **one** figure (image and loss curves) and redraws it in place
through an IPython display handle (`display(figure, display_id=True)` once, then `handle.update(figure)`),
with a progress bar that shows the current loss. Outside a notebook it prints a progress bar instead.
Jupyter's Stop button (interrupt) ends the run early and still returns the best image so far.

From here on we use the package's defaults for everything we do not set, collected in a `TransferConfig`.
"""),
("code", '''
config = nst.TransferConfig(size=SIZE, steps=STEPS, content_weight=ALPHA, style_weight=BETA, tv_weight=GAMMA,
                            preview_every=max(5, STEPS // 15), device=str(device))
preview = nst.LivePreview(title="L-BFGS")
lbfgs = nst.stylize(content, style, config, model=model, callback=preview)
print(lbfgs.summary())

assert lbfgs.completed and lbfgs.steps == STEPS
assert lbfgs.image.shape == content.shape and 0 <= lbfgs.image.min() and lbfgs.image.max() <= 1
assert lbfgs.history["total"][-1] < lbfgs.history["total"][0]
assert preview.frames >= 2   # one figure, redrawn in place
'''),
("md", r"""
## Loss curves per term

`nst.plot_losses` draws one curve per weighted term, on a log scale. Starting from the photo, the content
term starts at zero and rises as the style pulls the image away from it; the style term falls by an order
of magnitude or more; the TV term stays small. The total (thick line) drops fast and then flattens: most of
the visible change happens early.
"""),
("code", '''
figure = nst.plot_losses(lbfgs.history, title="L-BFGS: weighted loss terms")
history = lbfgs.history
assert history["content"][0] < 1e-4 < history["content"][-1]
assert history["style"][-1] < history["style"][0]
'''),
("md", r"""
## L-BFGS or Adam?

The paper uses L-BFGS. Adam is simpler (no closure; one evaluation per step; clamping after every step is
harmless because it keeps no curvature estimate) and is the usual choice when a network is trained. Here the
problem is one smooth, deterministic function of the pixels, which is where L-BFGS's curvature estimate pays
off. Same number of steps means the same number of VGG evaluations, so the comparison is fair in time too.
Adam's default learning rate in the package is 0.02 per step, on pixel values in [0, 1].
"""),
("code", '''
adam = nst.stylize(content, style, config, model=model, optimizer="adam")
print(adam.summary())
assert adam.completed and adam.steps == lbfgs.steps
assert adam.history["total"][-1] < adam.history["total"][0]

finals = {"L-BFGS": lbfgs.history["total"][-1], "Adam": adam.history["total"][-1]}
images = nst.compare([content, lbfgs.image, adam.image],
                     ["content", f"L-BFGS, {STEPS} steps: loss {finals['L-BFGS']:.3g}",
                      f"Adam, {STEPS} steps: loss {finals['Adam']:.3g}"])
curves, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
nst.plot_losses(lbfgs.history, ax=axes[0], title="L-BFGS")
nst.plot_losses(adam.history, ax=axes[1], title="Adam (lr 0.02)")
curves.tight_layout()
'''),
("md", r"""
## The content/style ratio

$\beta/\alpha$ decides how much of the photograph survives (the paper's Figure 3 varies it over four orders
of magnitude). With a small ratio the photo barely changes; with a large one the painting's texture takes
over and the layout of the photo fades. Three runs with the same number of steps:
"""),
("code", '''
RATIO_STEPS = 10 if QUICK else 200
style_weights = [1.0, 10.0, 100.0]        # β with α = 1
ratio_runs = [nst.stylize(content, style, config, model=model, style_weight=beta, steps=RATIO_STEPS)
              for beta in style_weights]
figure = nst.compare([run.image for run in ratio_runs], [f"β/α = {beta:g}" for beta in style_weights])

content_error = [run.history["content"][-1] / ALPHA for run in ratio_runs]   # unweighted relative errors
style_error = [run.history["style"][-1] / beta for run, beta in zip(ratio_runs, style_weights)]
for beta, c, s in zip(style_weights, content_error, style_error):
    print(f"β/α = {beta:>5g}: content error {c:.3f}, style error {s:.3f}")
assert content_error[0] < content_error[-1]   # more style weight: further from the photo's features ...
assert style_error[0] > style_error[-1]       # ... and closer to the painting's Gram matrices
'''),
("md", r"""
## Using a GPU

Every step is a VGG forward and backward pass over the whole image, and the cost grows with the number of
pixels: doubling the side quadruples it. On a GPU a 512 px picture takes seconds to a minute; on a CPU the
same run takes many minutes.

* `nst.pick_device()` chooses CUDA, then Apple's MPS, then the CPU; `stylize` moves the model and the images
  there. Pass `device="cpu"` to force the CPU.
* **In Colab:** *Runtime → Change runtime type → GPU*, then run the notebook again from the top.
  `nst.pick_device("cuda")` explains this when there is no GPU.
* **Without a GPU:** use a smaller size (256 px has a quarter of the pixels of 512 px) and fewer steps
  (100–200 L-BFGS steps give most of the effect). This notebook does that by itself.
* **Memory:** `nst.estimate_memory` estimates one step's peak memory; `stylize` refuses sizes that would not
  fit and suggests one that does.
* **Precision:** the default `precision="auto"` runs the VGG pass in bfloat16 where the chip computes it
  natively (`nst.native_bf16(device)`): GPUs from Ampere on (A100, L4, RTX 30xx; not Colab's T4) and CPUs with
  AMX or AVX-512 BF16 (Intel Xeon from Sapphire Rapids, AMD Zen 4). The Gram matrices and losses stay float32.
  That is 2-3x faster, and the pictures are as good (the strokes land differently, as they do after any
  change of rounding; see the README's Performance section). `precision="fp32"` turns it off.
"""),
("code", '''
print(f"this notebook: {device}, {1000 * lbfgs.seconds / lbfgs.steps:.0f} ms per step at {SIZE} px, "
      f"VGG pass in {'bfloat16' if nst.native_bf16(device) else 'float32'}")
if device.type == "cuda":
    print("GPU:", torch.cuda.get_device_name(device))
else:
    try:
        nst.pick_device("cuda")
    except nst.SettingsError as error:
        print("no CUDA GPU here:", error)

for side in (256, 512, 1024):
    print(f"{side:>4} px: about {nst.estimate_memory(model, side, side, LAYERS) / 2**30:.2f} GiB per step")
assert nst.estimate_memory(model, 512, 512, LAYERS) > nst.estimate_memory(model, 256, 256, LAYERS)
'''),
("md", r"""
## Saving the result

`result.save(path)` writes the image (PNG or JPEG, from the suffix) and creates missing folders;
`result.save(path, best=True)` writes the image with the lowest loss instead of the last one. In Colab the
file lands in the runtime's disk: download it from the file browser or mount Google Drive first.

If saving fails (a read-only folder, a full disk, a file name without a suffix, a file where a folder
should be) you get an `ImageSaveError` that says why, and nothing is lost: the image is still in
`result.image`, so fix the path and save again.
"""),
("code", '''
from pathlib import Path

saved = lbfgs.save(Path("outputs") / "04_tubingen_starry_night.png")
print("saved", saved)
assert saved.is_file()

try:
    lbfgs.save(saved / "inside_a_file.png")   # that "folder" is the PNG we just wrote
except nst.ImageSaveError as error:
    print("save failed:", error)
else:
    raise AssertionError("saving inside a file should fail")

assert lbfgs.image.shape == content.shape     # the image is still in memory ...
assert lbfgs.save(Path("outputs") / "04_saved_again.png").is_file()   # ... and can be saved elsewhere
'''),
("md", r"""
## Summary

* Style transfer optimises the pixels of one image; VGG stays frozen. Targets (content features, style Grams)
  are computed once, under `torch.no_grad()`.
* L-BFGS evaluates the loss several times per `step()`, through a closure: count evaluations, which are
  what costs time, and clamp the image to [0, 1] *between* `step()` calls, never inside the closure.
* `nst.stylize` runs the same loop (the same losses; step by step identical with Adam) and adds the budget,
  the best image, interrupt handling and `LivePreview`, one figure redrawn in place with a progress bar.
* At equal numbers of evaluations L-BFGS usually ends lower than Adam on this problem; β/α trades the
  photo's layout for the painting's texture.
* A GPU makes 512 px practical; without one, use 256 px and fewer steps. `result.save` never loses the image.

## Exercises

1. Start from white noise, as in the paper (`init="noise"`). How many more steps does it need to look as good
   as the run that starts from the photo?
2. Move the clamp into the closure of the hand-written loop (`x.data.clamp_(0, 1)` before the forward pass)
   and compare the loss after the same number of evaluations with the clamp-between-steps version.
3. Set the TV weight γ to 0, 10 and 100. What happens to the fine noise, and to the content and style curves?
4. Raise `HAND_STEPS` to 100 and plot the hand-written and the package's L-BFGS histories on one axis.
   Where do they part, and why does the same experiment with Adam not drift?
"""),
]


NB05 = [
("md", r"""
# 05 · Style weights with sliders

How much should each layer count? How strong should the style be? The answers are partly a matter of taste,
and the quickest way to develop that taste is to try settings and look. This notebook gives you a panel for
it: one slider per style layer, the style/content ratio, the smoothness (TV) weight, steps, size, optimiser
and starting image, your own images by upload, and a Run button. Every run lands in a gallery with its
settings, so you can compare them side by side.

{BADGE}
"""),
("code", SETUP),
("code", '''
import os
import torch
import matplotlib.pyplot as plt
import nst_helpers as nst

QUICK = os.environ.get("NST_QUICK") == "1"   # set by `make test`: tiny images, few steps
device = nst.pick_device()                    # CUDA → MPS → CPU
SIZE = 64 if QUICK else (512 if device.type == "cuda" else 256)
STEPS = 10 if QUICK else (300 if device.type == "cuda" else 150)
print(f"device: {device}, quick mode: {QUICK}, image size: {SIZE}, steps: {STEPS}")
'''),
("md", r"""
## How the panel works

* **Moving a slider never starts a run.** A run takes seconds to minutes, so sliders only change settings:
  they have `continuous_update=False` (the value is taken when you let go) and only **Run** optimises.
* **Weights are on log sliders.** For the layer weights $w_l$, the ratio $\beta/\alpha$ and the TV weight
  $\gamma$ the order of magnitude is what matters. A weight slider at its **far left means off** (weight 0),
  and says so.
* **Style layers**: `relu1_1` and `relu2_1` carry colours and fine texture, `relu4_1` and `relu5_1` larger
  structures such as brush strokes and swirls.
* **Live preview and progress inside the panel**: an image and a progress bar that update in place while a
  run goes. (They are widgets rather than `nst.LivePreview`, whose display handle cannot be updated inside
  JupyterLab's Output widget.)
* **Gallery**: each run adds a thumbnail with its settings, newest last.
* **Stopping a run**: use Jupyter's ■ Stop (interrupt the kernel). The run ends after the current step and
  its partial result joins the gallery. The panel has no Stop button because it could not work: while a run
  keeps the kernel busy, a click waits in the queue until the run is over.
* **Your own images**: the upload buttons under the pickers. Images are resized to the size slider at each run.

The panel lives in `nst_helpers.widgets`, the only part of the package that needs `ipywidgets`.
"""),
("code", '''
from nst_helpers.widgets import StylePanel

panel = StylePanel("tubingen", "starry_night", size=SIZE, steps=STEPS, device=device)
panel.widget
'''),
("md", r"""
## What the sliders mean, in code

`panel.config()` is the `TransferConfig` the widgets describe right now; Run passes exactly this to
`nst.stylize`. The content weight $\alpha$ stays 1, so the ratio slider sets $\beta$. The starting values are
the package defaults: five layers at 0.2, $\beta/\alpha = 10$, no TV.
"""),
("code", '''
import ipywidgets as widgets

config = panel.config()
print(config)

weight_sliders = [*panel.layer_sliders.values(), panel.ratio_slider, panel.tv_slider]
assert all(isinstance(slider, widgets.FloatLogSlider) for slider in weight_sliders)
assert not any(slider.continuous_update for slider in weight_sliders + [panel.steps_slider, panel.size_slider])
assert config.style_layers == nst.DEFAULT_STYLE_LAYERS
assert (config.content_weight, config.style_weight, config.tv_weight) == (1.0, 10.0, 0.0)
'''),
("md", r"""
## Running without a click

A test runner (or any script) cannot click. `panel.run()` is what the Run button calls: it reads the
widgets, runs `nst.stylize` with the live preview in the panel, adds the result to the gallery and returns
it. Watch the panel above while this cell runs.
"""),
("code", '''
first = panel.run()
print(first.summary())

assert len(panel.gallery) == 1
settings, result = panel.gallery[0]
assert result is first and settings["steps"] == STEPS and settings["style/content"] == 10
assert max(first.image.shape[-2:]) == SIZE
assert first.history["total"][-1] < first.history["total"][0]
'''),
("md", r"""
## A second setting

Setting a widget's value from code is the same as moving it by hand, so nothing runs yet. Here we keep only
the two lowest style layers (the others at the far left) and raise $\beta/\alpha$ to 100: colours and fine
texture of the painting, without its large swirls.
"""),
("code", '''
panel.ratio_slider.value = 100
for name in ("relu3_1", "relu4_1", "relu5_1"):
    panel.layer_sliders[name].value = 0.001   # the far left: off
print("style layers now:", panel.config().style_layers)
assert len(panel.gallery) == 1                # moving sliders started nothing
'''),
("md", r"""
### The sliders, read by hand

What will Run pass to `stylize`? A `FloatLogSlider` moves the exponent, and its `value` is already
$10^{\text{position}}$. A weight slider at its far left (`value == 10 ** slider.min`) stands for weight 0,
and a style layer of weight 0 is left out of the style loss. With $\alpha = 1$ the ratio slider is $\beta$.
Written out, that has to agree with `panel.config()`:
"""),
("code", '''
def weight_from(slider):
    """The weight a log slider stands for: 0 ("off") at its far left, else its value."""
    far_left = slider.base ** slider.min
    return 0.0 if slider.value <= far_left * (1 + 1e-6) else slider.value

layer_weights = {name: weight_from(slider) for name, slider in panel.layer_sliders.items()}
style_layers_by_hand = {name: weight for name, weight in layer_weights.items() if weight > 0}
style_weight_by_hand = 1.0 * weight_from(panel.ratio_slider)    # beta = alpha * ratio, alpha = 1
print("by hand:", style_layers_by_hand, "style weight", style_weight_by_hand, "TV weight", weight_from(panel.tv_slider))

config = panel.config()
assert style_layers_by_hand == config.style_layers
assert style_weight_by_hand == config.style_weight and weight_from(panel.tv_slider) == config.tv_weight
'''),
("md", r"""
Now the run with these settings (in a notebook you would press **Run**):
"""),
("code", '''
second = panel.run()
print(second.summary())
assert len(panel.gallery) == 2
assert set(second.config.style_layers) == {"relu1_1", "relu2_1"} and second.config.style_weight == 100
'''),
("md", r"""
## Comparing runs

The gallery in the panel shows each result with its settings. `panel.compare()` draws the same comparison
as a matplotlib figure, to keep or to print; `panel.compare(last=3)` shows only the newest three.
"""),
("code", '''
from pathlib import Path

figure = panel.compare()
Path("outputs").mkdir(exist_ok=True)
figure.savefig(Path("outputs") / "05_gallery.png", dpi=100)
assert len(figure.axes) == len(panel.gallery) == 2
'''),
("md", r"""
## Stopping a run

Jupyter's Stop button raises `KeyboardInterrupt` inside the running code. `nst.stylize` catches it, warns,
and returns what it has, with `status="interrupted"`; the panel then adds that partial result to the
gallery. Here a callback raises the same exception after five steps, as if you had pressed Stop.
"""),
("code", '''
def press_stop_after_five_steps(progress):
    if progress.step >= 5 and not progress.done:
        raise KeyboardInterrupt   # what Jupyter's Stop raises in the running loop

partial = nst.stylize("tubingen", "starry_night", panel.config(), steps=10, preview_every=5,
                      callback=press_stop_after_five_steps)
print(partial.status, "-", partial.message)
assert partial.status == "interrupted" and 5 <= partial.steps < 10   # L-BFGS may finish its line search
assert torch.isfinite(partial.image).all() and partial.image.shape[-2:] == first.image.shape[-2:]
'''),
("md", r"""
## Your own images

Click **own content** or **own style** in the panel and pick a file: it appears in the picker as
"⬆ file name" and is used from the next run on. In code, `panel.use_image(role, source, name)` does the
same with a path, bytes or a PIL image. A file that is not an image is refused with a message, and the
previous choice stays.
"""),
("code", '''
photo = nst.sample_image("chelsea").read_bytes()   # stands in for a photo of yours
panel.use_image("content", photo, name="my_cat.png")
print("content image:", panel.settings()["content"])
assert panel.settings()["content"] == "my_cat.png"

try:
    panel.use_image("style", b"these bytes are not an image", name="notes.txt")
except nst.ImageLoadError as error:
    print("refused:", error)
assert panel.settings()["style"] == "starry_night"
'''),
("md", r"""
## Summary

* A panel of widgets makes exploring settings cheap: log sliders for the weights, a Run button that is the
  only thing that starts an optimisation, a live preview and a progress bar updated in place, and a gallery
  that keeps every run with its settings.
* `panel.config()` shows the `TransferConfig` behind the sliders; `panel.run()` is the Run button in code;
  `panel.compare()` turns the gallery into a figure.
* Stop a run with Jupyter's Stop: `stylize` returns the partial result, which the gallery keeps.

## Exercises

1. Keep one style layer at a time (the others at the far left) and run five times. Which layer gives the
   colours, which the swirls? Compare with the style reconstructions in Figure 1 of the paper.
2. Find the smallest $\beta/\alpha$ at which the painting is clearly recognisable, for two different style
   images. Is it the same number?
3. Compare "start from: white noise" with "start from: content image" at the same settings and steps.
4. Upload a photo of your own. How much TV weight removes the fine noise without blurring its edges?
"""),
]


def main() -> None:
    for name, cells in (("04_optimisation_loop.ipynb", NB04), ("05_style_sliders.ipynb", NB05)):
        path = ROOT / "notebooks" / name
        nbformat.write(notebook(name, cells), path)
        print("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
