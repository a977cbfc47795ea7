from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_are_positive_numbers(bits_per_char_q3, perplexity_q3, char_bits_per_byte_q3, bpe_bits_per_byte_q3):
    from course_utils.grading.checks import number
    answers = {'bits_per_char_q3': bits_per_char_q3, 'perplexity_q3': perplexity_q3, 'char_bits_per_byte_q3': char_bits_per_byte_q3, 'bpe_bits_per_byte_q3': bpe_bits_per_byte_q3}
    for name, value in answers.items():
        x = number(value, name)
        assert 0 < x < 100, f'{name} is {x}: expected a positive number'
    ppl = number(perplexity_q3, 'perplexity_q3')
    assert ppl >= 1, f'perplexity_q3 is {ppl}: a perplexity is at least 1'

