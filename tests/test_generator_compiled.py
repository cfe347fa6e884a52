"""The compiled renderer (data_gen.compiled, numba) against the torch path: the same images, bit
for bit, for the generators and for the renderers called directly; and the switches that choose
between them."""

import pytest
import torch

from data_gen import compiled, generate_images, generate_noise2noise, generate_videos
from data_gen.images import Cells, Rects, render_cells, render_rects

pytest.importorskip("numba")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def both_paths(monkeypatch, draw):
    """draw() on the torch path, then on the compiled path; both results."""
    monkeypatch.setenv("DATA_GEN_COMPILED", "0")
    assert not compiled.available()
    reference = draw()
    monkeypatch.setenv("DATA_GEN_COMPILED", "1")
    assert compiled.available()
    return reference, draw()


def assert_identical(reference, result):
    reference = reference if isinstance(reference, tuple) else (reference,)
    result = result if isinstance(result, tuple) else (result,)
    assert len(reference) == len(result)
    for a, b in zip(reference, result):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b), f"{(a != b).sum().item()} values differ, max {(a - b).abs().max()}"


CASES = {
    "course 64": lambda: generate_images(256, 64, generator=gen(0)),
    "odd frame": lambda: generate_images(64, (100, 37), generator=gen(1)),
    "tiny images, cells cropped": lambda: generate_images(64, 8, generator=gen(2)),
    "thin frame": lambda: generate_images(16, (5, 300), generator=gen(3)),
    "float64": lambda: generate_images(32, 48, generator=gen(4), dtype=torch.float64),
    "many radii, long sides": lambda: generate_images(
        32, 48, generator=gen(5), cell_radius=(1, 30), noisy_side=(1, 60), filled_long=(1, 70),
        cell_rate=0.01, noisy_rate=0.002),
    "sensor noise": lambda: generate_images(32, 64, generator=gen(6), photons=50.0,
                                            gaussian_sigma=0.1),
    "no objects": lambda: generate_images(8, 64, generator=gen(7), cell_rate=0.0,
                                          filled_rate=0.0, noisy_rate=0.0),
    "noise2noise": lambda: generate_noise2noise(40, 64, generator=gen(8)),
    "videos": lambda: generate_videos(6, 4, 48, generator=gen(9), filled_rate=0.002),
    "videos, fresh clutter": lambda: generate_videos(4, 3, 32, generator=gen(10),
                                                     persistent_fraction=0.5),
    "two chunks": lambda: generate_images(300, 32, generator=gen(11)),
}


@pytest.fixture
def threads():
    """Sets torch's thread count for a test (the compiled path splits its work between that
    many threads) and restores it after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("case", list(CASES))
def test_generators_give_the_same_images_on_both_paths(monkeypatch, threads, case, count):
    threads(count)
    monkeypatch.setattr(compiled, "MIN_PARALLEL_PIXELS", 0)   # the worker path, however small
    reference, result = both_paths(monkeypatch, CASES[case])
    assert_identical(reference, result)


def test_the_generator_state_advances_alike(monkeypatch):
    """After a batch, both paths leave the generator in the same state: the next draws match."""
    def draw():
        g = gen(12)
        generate_images(50, 64, generator=g)
        return torch.rand(4, generator=g)

    assert_identical(*both_paths(monkeypatch, draw))


def test_discs_leaving_the_image_are_clipped_alike(monkeypatch):
    """Centres given by hand, some discs partly off the image, overlapping discs of equal and
    different radii: the kernels clip and order their additions as the torch path does."""
    cells = Cells(
        centre_y=torch.tensor([[0, 5, 5, 19, 10], [3, 3, 3, -2, 25]]),
        centre_x=torch.tensor([[0, 6, 6, 11, 31], [3, 4, 3, 2, 10]]),
        radius=torch.tensor([[4, 3, 3, 6, 5], [2, 7, 2, 3, 4]]),
        amplitude=torch.tensor([[0.7, 0.9, 0.61, 1.0, 0.8], [0.66, 0.77, 0.88, 0.5, 0.9]]),
        valid=torch.tensor([[True, True, True, True, True], [True, True, True, False, True]]),
    )
    reference, result = both_paths(monkeypatch, lambda: render_cells(cells, 20, 32))
    assert_identical(reference, result)
    assert result[0, 0, 0] > 0 and result[1].sum() > 0


def test_kernels_clip_rectangles_to_the_image():
    """The torch path assumes rectangles fit (the samplers place them so); the kernels clip any
    that do not, rather than write outside the output."""
    rects = Rects(top=torch.tensor([[-3, 8]]), left=torch.tensor([[-2, 6]]),
                  height=torch.tensor([[5, 9]]), width=torch.tensor([[4, 9]]),
                  value=torch.tensor([[0.5, 0.25]]), valid=torch.tensor([[True, True]]))
    out = torch.zeros(3, 10, 10)
    compiled.add_rects(out[1:2], rects, pixel_noise=False, generator=None)
    expected = torch.zeros(10, 10)
    expected[0:2, 0:2] += 0.5
    expected[8:10, 6:10] += 0.25
    assert torch.equal(out[1], expected)
    assert out[0].abs().sum() == 0 and out[2].abs().sum() == 0


def test_noisy_rectangles_draw_the_same_pixel_noise(monkeypatch):
    rects = Rects(top=torch.tensor([[0, 4], [2, 0]]), left=torch.tensor([[1, 0], [3, 3]]),
                  height=torch.tensor([[3, 6], [2, 10]]), width=torch.tensor([[7, 2], [5, 1]]),
                  value=torch.tensor([[0.5, 0.25], [0.75, 0.3]]),
                  valid=torch.tensor([[True, True], [True, False]]))

    def draw():
        g = gen(13)
        out = render_rects(rects, 10, 10, pixel_noise=True, generator=g)
        return out, torch.rand(3, generator=g)

    assert_identical(*both_paths(monkeypatch, draw))


def test_only_cpu_float_tensors_take_the_compiled_path(monkeypatch):
    monkeypatch.setenv("DATA_GEN_COMPILED", "1")
    assert compiled.usable(torch.zeros(2, 4, 4))
    assert compiled.usable(torch.zeros(2, 4, 4, dtype=torch.float64))
    assert not compiled.usable(torch.zeros(2, 4, 4, dtype=torch.bfloat16))
    assert not compiled.usable(torch.zeros(2, 4, 4).transpose(1, 2))
    monkeypatch.setenv("DATA_GEN_COMPILED", "0")
    assert not compiled.usable(torch.zeros(2, 4, 4))


def test_bfloat16_images_keep_the_torch_path(monkeypatch):
    reference, result = both_paths(
        monkeypatch, lambda: generate_images(16, 32, generator=gen(14), dtype=torch.bfloat16))
    assert_identical(reference, result)
    assert result[0].dtype == torch.bfloat16 and result[1].sum() > 0


def test_compiled_discs_refuse_subpixel_centres():
    cells = Cells(centre_y=torch.tensor([[3.5]]), centre_x=torch.tensor([[3.0]]),
                  radius=torch.tensor([[2]]), amplitude=torch.tensor([[1.0]]),
                  valid=torch.tensor([[True]]))
    with pytest.raises(ValueError, match="integer centres"):
        compiled.add_discs(torch.zeros(1, 8, 8), cells)


def test_a_new_process_makes_its_own_worker_pool(monkeypatch, threads):
    """The worker pool's threads do not survive a fork: a child (a DataLoader worker, say) must
    start its own pool instead of submitting to the parent's dead one and waiting forever. The
    fork is simulated by a new pid (a real forked child that runs torch's OpenMP kernels after
    its parent did can hang inside torch, which would make such a test flaky)."""
    threads(2)
    reference = generate_images(64, 32, generator=gen(15))
    pool, workers = compiled._workers()
    assert workers == 1 and compiled._workers()[0] is pool       # kept within a process
    monkeypatch.setattr(compiled.os, "getpid", lambda: -12345)   # as in a forked child
    child_pool, _ = compiled._workers()
    assert child_pool is not pool
    assert_identical(reference, generate_images(64, 32, generator=gen(15)))
    threads(3)                                                   # a new thread count: a new pool
    assert compiled._workers() == (compiled._POOL[2], 2) and compiled._POOL[2] is not child_pool


def test_torch_path_turns_the_kernels_off_in_its_thread_only_and_draws_the_same_images():
    assert compiled.available()
    reference = generate_images(4, 48, generator=gen(3), filled_rate=0.01, noisy_rate=0.01)
    seen = {}
    with compiled.torch_path():
        assert not compiled.available()
        with compiled.torch_path():           # nested: still off after the inner one ends
            pass
        assert not compiled.available()
        import threading
        other = threading.Thread(target=lambda: seen.update(other=compiled.available()))
        other.start()
        other.join()
        result = generate_images(4, 48, generator=gen(3), filled_rate=0.01, noisy_rate=0.01)
    assert seen["other"] and compiled.available()
    assert_identical(reference, result)


def test_one_decision_per_call_follows_the_environment_between_calls(monkeypatch):
    seen = []

    @compiled.one_decision
    def draw():
        seen.append(compiled.available())
        monkeypatch.setenv("DATA_GEN_COMPILED", "0")   # changed mid-call: this call keeps its
        seen.append(compiled.available())              # answer, the next call sees the change
        with compiled.torch_path():                    # torch_path() still turns them off
            seen.append(compiled.available())

    monkeypatch.setenv("DATA_GEN_COMPILED", "1")
    draw()
    assert seen == [True, True, False]
    assert not compiled.available()                    # outside a call: read each time
    seen.clear()
    draw()
    assert seen == [False, False, False]
    monkeypatch.setenv("DATA_GEN_COMPILED", "1")
    reference = generate_images(4, 48, generator=gen(3), filled_rate=0.01, noisy_rate=0.01)
    monkeypatch.setenv("DATA_GEN_COMPILED", "0")
    assert_identical(reference, generate_images(4, 48, generator=gen(3), filled_rate=0.01,
                                                 noisy_rate=0.01))


def test_default_settings_are_made_once_and_keywords_still_change_them():
    from data_gen.settings import GeneratorSettings, settings_from_keywords
    first = settings_from_keywords("f", None, {})
    assert first is settings_from_keywords("f", None, {}) and first == GeneratorSettings()
    changed = settings_from_keywords("f", None, {"cell_rate": 0.01})
    assert changed.cell_rate == 0.01 and first.cell_rate != 0.01
    n2n = settings_from_keywords("f", None, {}, preset=GeneratorSettings.noise2noise)
    assert n2n == GeneratorSettings.noise2noise() and n2n.filled_rate == 0.0005


def test_small_calls_stay_on_the_calling_thread_and_draw_the_same_images(monkeypatch, threads):
    threads(2)
    submitted = []
    pool, _ = compiled._workers()
    real_submit = pool.submit
    monkeypatch.setattr(pool, "submit", lambda *a, **k: submitted.append(1) or real_submit(*a, **k))
    small = generate_images(16, 64, generator=gen(16))          # 65,536 pixels: one thread
    assert not submitted and 16 * 64 * 64 < compiled.MIN_PARALLEL_PIXELS
    monkeypatch.setattr(compiled, "MIN_PARALLEL_PIXELS", 0)
    assert_identical(small, generate_images(16, 64, generator=gen(16)))   # with the worker
    assert submitted
    submitted.clear()
    monkeypatch.setattr(compiled, "MIN_PARALLEL_PIXELS", 96 * 64 * 64)
    generate_images(128, 64, generator=gen(17))                 # above it: the pool works
    assert submitted


def stream_and_torch(seed, draw):
    """draw(source) with a compiled.Stream over one generator and with torch calls on another
    of the same seed (source: anything with rand / randint / poisson); both results and both
    generators' states after."""
    ours, theirs = gen(seed), gen(seed)
    with compiled.Stream(ours) as stream:
        mine = draw(stream)
    from data_gen.sampling import _TorchDraws
    reference = draw(_TorchDraws(theirs, torch.device("cpu")))
    return mine, reference, ours.get_state(), theirs.get_state()


@pytest.mark.parametrize("kind", ["rand32", "rand64", "randint", "randint wide", "poisson",
                                  "poisson 0", "poisson large", "bfloat16"])
def test_the_stream_draws_what_torch_draws_and_ends_where_torch_ends(kind):
    draws = {
        "rand32": lambda d: d.rand((7, 301), torch.float32),   # > 624 draws: twists inside
        "rand64": lambda d: d.rand((500,), torch.float64),
        "randint": lambda d: d.randint(-3, 40, (900,)),
        "randint wide": lambda d: d.randint(0, 2 ** 40, (400,)),
        "poisson": lambda d: d.poisson(8.19, 300),
        "poisson 0": lambda d: d.poisson(0.0, 10),
        "poisson large": lambda d: d.poisson(250.0, 50),      # handed to torch
        "bfloat16": lambda d: d.rand((40,), torch.bfloat16),  # handed to torch
    }
    assert compiled.Stream.usable(gen(0))
    mine, reference, state, expected = stream_and_torch(3, lambda d: [draws[kind](d),
                                                                      d.rand((5,), torch.float32)])
    for a, b in zip(mine, reference):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert torch.equal(state, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_samplers_in_one_kernel_call_match_the_torch_path(monkeypatch, dtype):
    from data_gen.sampling import sample_cells, sample_filled_rects, sample_noisy_rects

    def draw():
        g = gen(12)
        return [sample(256, 64, 48, generator=g, dtype=dtype, **kw)
                for sample, kw in [(sample_cells, {}), (sample_filled_rects, {"rate": 0.002}),
                                   (sample_noisy_rects, {}), (sample_cells, {"rate": 0.01})]
                ], g.get_state()

    (reference, state_a), (result, state_b) = both_paths(monkeypatch, draw)
    assert torch.equal(state_a, state_b)
    for a, b in zip(reference, result):
        for field in a.__dataclass_fields__:
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype and torch.equal(x, y), field


@pytest.mark.parametrize("size", [16, 17, 31, 640, 625 * 37, 5])
def test_the_streams_normals_are_torchs_bit_for_bit(size):
    """Stream.normal against torch's normal_ at sizes beyond the per-process check's: whole runs
    of 16, a tail made again from fresh uniforms, twists inside, and under 16 (torch's scalar
    path); then a rand, so the state after must be torch's too."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch's normal_ takes its scalar path on this CPU; the kernel is not used")
    assert compiled._normal_checked()
    ours, theirs = gen(size), gen(size)
    torch.rand(size % 7, generator=ours), torch.rand(size % 7, generator=theirs)
    with compiled.Stream(ours) as stream:
        mine = [stream.normal(torch.empty(size)), stream.rand((3,), torch.float32)]
    reference = [torch.empty(size).normal_(generator=theirs), torch.rand(3, generator=theirs)]
    for a, b in zip(mine, reference):   # bits: -0.0 and 0.0 differ
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert torch.equal(ours.get_state(), theirs.get_state())


def test_pixel_noise_falls_back_to_torchs_normal_where_the_check_fails(monkeypatch):
    """Where the kernel's normals are not torch's (another CPU path), _normals calls normal_."""
    monkeypatch.setattr(compiled, "_normal_checked", lambda: False)
    calls = []
    real = torch.Tensor.normal_
    monkeypatch.setattr(torch.Tensor, "normal_",
                        lambda self, *a, **k: calls.append(self.numel()) or real(self, *a, **k))
    parts = [torch.empty(40), torch.empty(700)]
    compiled._normals(parts, gen(1))
    assert calls == [40, 700]
    g = gen(1)
    assert torch.equal(parts[1], (torch.empty(40).normal_(generator=g),
                                  torch.empty(700).normal_(generator=g))[1])
