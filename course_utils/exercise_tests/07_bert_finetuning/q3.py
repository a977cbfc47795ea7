from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_count_of_the_right_size(embedding_params_q3):
    from course_utils.grading.checks import number
    count = number(embedding_params_q3, 'embedding_params_q3')
    assert count == int(count), f'embedding_params_q3 should be a whole number, got {count}'
    assert 20000000 < count < 30000000, f'{count:g}: the embedding layer of bert-base has between 20 and 30 million parameters'

