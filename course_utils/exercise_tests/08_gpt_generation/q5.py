from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 2

@test_case(points=None, hidden=False)
def test_are_two_tokens_and_log_probabilities(greedy_q5, greedy_logp_q5, beam_q5, beam_logp_q5, best_q5, best_logp_q5):
    from course_utils.grading.checks import number
    for name, text in [('greedy_q5', greedy_q5), ('beam_q5', beam_q5), ('best_q5', best_q5)]:
        assert isinstance(text, str) and len(text) == 2 and (set(text) <= set('abc')), f"{name} is {text!r}: write the two tokens as a string such as 'ab'"
    for name, value in [('greedy_logp_q5', greedy_logp_q5), ('beam_logp_q5', beam_logp_q5), ('best_logp_q5', best_logp_q5)]:
        x = number(value, name)
        assert x < 0, f'{name} is {x}: a log-probability of a sequence whose probability is below 1 is negative'

