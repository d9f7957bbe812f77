"""Engine helpers whose effect is not visible in a picture."""

from art_ai_addon import core


def test_thread_preference_reaches_torch_without_importing_it_early():
    torch = core.require_torch()
    before = torch.get_num_threads()
    try:
        core.set_threads(1)
        assert core.require_torch().get_num_threads() == 1
    finally:
        core.set_threads(0)
        torch.set_num_threads(before)
