"""``fit`` under ``torchrun``: two gloo processes train to the same weights as one process.

In float32 (``amp=False``): under bf16 autocast each micro-batch's products are rounded to bf16, and
the processes' shares group the examples differently from one process's micro-batches, so the
weights would differ by bf16's rounding, not by a data-parallel error."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from course_utils import fit

SCRIPT = textwrap.dedent('''
    import os
    import signal
    import sys
    import time
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    import course_utils

    out, ckpt, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    terminate_at = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ckpt = ckpt.replace("RANK", os.environ["RANK"])  # a folder per process: storage not shared
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(49, 5, generator=gen)
    data = TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))

    def crash(step, loss):
        if step == crash_at:
            raise RuntimeError("a process died")
        if step == terminate_at and os.environ["RANK"] == "0":
            os.kill(os.getppid(), signal.SIGTERM)  # the scheduler stops torchrun, which stops us
        if terminate_at and step == terminate_at + 1:  # steps take ms: wait for torchrun's relay
            deadline = time.monotonic() + 60
            while not got_sigterm and time.monotonic() < deadline:
                time.sleep(0.01)

    # Watch (not replace) the SIGTERM handler fit installs, to know when the relayed signal arrived.
    got_sigterm, install = [], signal.signal

    def watched(sig, handler):
        if sig == signal.SIGTERM and callable(handler):
            def seen(signum, frame, handler=handler):
                got_sigterm.append(signum)
                return handler(signum, frame)
            return install(sig, seen)
        return install(sig, handler)

    signal.signal = watched

    history = course_utils.fit(model, data, epochs=3, batch_size=4, accumulation=2, lr=1e-2, seed=3,
                               schedule="linear", warmup=2, clip_norm=1.0, checkpoint_dir=ckpt or None, amp=False,
                               checkpoint_every=None if terminate_at else 5,
                               on_step=crash if crash_at or terminate_at else None, progress=False)
    import torch.distributed as dist
    if dist.get_rank() == 0:
        torch.save({"state": model.state_dict(), "steps": history.steps, "examples": history.examples_seen,
                    "loss": history.loss, "resumed": history.resumed_from_step}, out)
''')


def single_process_run():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(49, 5, generator=gen)
    data = TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))
    history = fit(model, data, epochs=3, batch_size=4, accumulation=2, lr=1e-2, seed=3, schedule="linear",
                  warmup=2, clip_norm=1.0, progress=False, amp=False)
    return model.state_dict(), history


def torchrun(tmp_path, out, ckpt="", crash_at=0, terminate_at=0):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(out), str(ckpt), str(crash_at), str(terminate_at)],
                          capture_output=True, text=True, env=env, timeout=240)


@pytest.mark.slow
def test_fit_under_torchrun_with_two_processes_equals_one_process_with_the_same_call(tmp_path):
    # The same call in both: a step holds batch_size × accumulation = 8 examples, which two processes
    # share (4 each). 49 examples: the last step of each epoch has one, so one process has none.
    # The loss curve must match too: each step's loss is summed over the processes.
    done = torchrun(tmp_path, tmp_path / "ddp.pt")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt")
    single, history = single_process_run()
    diff = max((ddp["state"][k] - single[k]).abs().max().item() for k in single)
    assert diff <= 1e-6, f"weights differ by {diff:.2e}"
    assert ddp["steps"] == history.steps == 21 and ddp["examples"] == 3 * 49
    assert ddp["loss"] == pytest.approx(history.loss, rel=1e-5)


@pytest.mark.slow
def test_fit_under_torchrun_resumes_after_a_crash_to_the_same_weights(tmp_path):
    ckpt = tmp_path / "ckpt"
    crashed = torchrun(tmp_path, tmp_path / "x.pt", ckpt, crash_at=12)
    assert crashed.returncode != 0 and (ckpt / "checkpoint.pt").exists()
    resumed = torchrun(tmp_path, tmp_path / "resumed.pt", ckpt)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = torch.load(tmp_path / "resumed.pt")
    assert result["resumed"] == 10  # the last checkpoint before the crash: mid-epoch 2 (every 5 steps)
    single, _ = single_process_run()
    diff = max((result["state"][k] - single[k]).abs().max().item() for k in single)
    assert diff <= 1e-6, f"weights differ by {diff:.2e}"


@pytest.mark.slow
def test_sigterm_to_torchrun_saves_at_a_step_all_processes_agree_on_and_resumes_exactly(tmp_path):
    # torchrun passes a scheduler's SIGTERM on to every process. They may get it at different
    # moments; each one's request rides in the step's all-reduce and is read every log_every = 10
    # steps. Sent after step 8, and each process waits after step 9 until the relay reached it
    # (torchrun's relay can take longer than a step of a few ms on a loaded machine), so both stop
    # after step 10, rank 0 writes, and both exit.
    ckpt = tmp_path / "ckpt"
    stopped = torchrun(tmp_path, tmp_path / "x.pt", ckpt, terminate_at=8)
    assert stopped.returncode != 0, "torchrun was terminated and should say so"
    assert "Stopped by SIGTERM at step 10; checkpoint saved" in stopped.stdout + stopped.stderr, stopped.stderr[-3000:]
    resumed = torchrun(tmp_path, tmp_path / "resumed.pt", ckpt)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = torch.load(tmp_path / "resumed.pt")
    assert result["resumed"] == 10  # not 7, the end of epoch 1: the work up to the signal is kept
    single, history = single_process_run()
    diff = max((result["state"][k] - single[k]).abs().max().item() for k in single)
    assert diff <= 1e-6, f"weights differ by {diff:.2e}"
    assert result["loss"] == pytest.approx(history.loss, rel=1e-5)


@pytest.mark.slow
def test_a_checkpoint_folder_the_processes_do_not_share_is_refused_before_training(tmp_path):
    # Two machines without shared storage: each process sees its own folder. Only rank 0 writes, so
    # after a restart rank 1 would start over while rank 0 resumes. Refused at the start, by name.
    refused = torchrun(tmp_path, tmp_path / "x.pt", tmp_path / "node-RANK")
    assert refused.returncode != 0
    assert "is not shared by all processes: rank 1" in refused.stderr, refused.stderr[-3000:]
    assert not (tmp_path / "x.pt").exists()


UNUSED_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    import course_utils

    class WithSpareHead(nn.Module):
        """A head no step uses (an idle expert, a conditional branch): its gradient stays None."""
        def __init__(self):
            super().__init__()
            self.body, self.spare = nn.Linear(5, 2), nn.Linear(5, 2)
        def forward(self, x):
            return self.body(x)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 5, generator=gen)
    torch.manual_seed(0)
    model = WithSpareHead()
    course_utils.fit(model, TensorDataset(x, (x[:, 0] > 0).long()), epochs=2, batch_size=8, lr=1e-2,
                     weight_decay=0.1, amp=False, progress=False)
    import torch.distributed as dist
    if dist.get_rank() == 0:
        torch.save(model.state_dict(), sys.argv[1])
''')


@pytest.mark.slow
def test_a_parameter_no_process_uses_is_left_alone_as_in_one_process(tmp_path):
    # AdamW decays and moves any parameter that has a gradient, even a zero one; one process skips a
    # parameter whose gradient is None. fit's all-reduce keeps None where no process had a gradient.
    script = tmp_path / "unused.py"
    script.write_text(UNUSED_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path / "out.pt")], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "out.pt")
    torch.manual_seed(0)
    start = nn.Linear(5, 2), nn.Linear(5, 2)  # the same draws as WithSpareHead's body and spare
    assert torch.equal(state["spare.weight"], start[1].weight) and torch.equal(state["spare.bias"], start[1].bias)
    assert not torch.equal(state["body.weight"], start[0].weight)


def test_gradients_are_reduced_in_buckets_that_cover_every_tensor_once_in_order():
    from course_utils.parallel import BUCKET_BYTES, _buckets

    tensors = [torch.zeros(n) for n in (10, 3 * 2**20, 4 * 2**20, 5, 7 * 2**20, 1)]  # float32: 4 bytes each
    buckets = _buckets(tensors)
    assert [t for b in buckets for t in b] == tensors
    for bucket in buckets:
        assert len(bucket) == 1 or sum(t.numel() * 4 for t in bucket) <= BUCKET_BYTES
    assert len(buckets) > 1
