from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_no_alarm_between_two_windows_of_one_distribution(drift_alarm):
    import torch
    g = torch.Generator().manual_seed(0)
    reference, current = (torch.randn(200, 384, generator=g) for _ in range(2))
    alarm, flagged = drift_alarm(reference, current)
    flagged = [int(d) for d in flagged]
    assert not alarm and flagged == [], f'two windows of one distribution raised alarm={alarm} with {len(flagged)} of 384 dimensions flagged ({flagged[:8]}...): each test at level 0.05 flags about 5% of them by chance'

@test_case(points=None, hidden=False)
def test_flags_the_shifted_dimensions(drift_alarm):
    import torch
    g = torch.Generator().manual_seed(1)
    reference, current = (torch.randn(200, 384, generator=g) for _ in range(2))
    current[:, [5, 70, 300]] += 1.0
    alarm, flagged = drift_alarm(reference, current)
    flagged = sorted((int(d) for d in flagged))
    assert alarm and flagged == [5, 70, 300], f'with dimensions 5, 70 and 300 shifted by one standard deviation, alarm={alarm} and flagged={flagged[:8]}: such a shift gives p-values far below 0.05 / 384'

