from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 1

@test_case(points=None, hidden=False)
def test_is_an_int_of_the_right_size(embedding_params_q3):
    assert isinstance(embedding_params_q3, int), f'embedding_params_q3 should be an int, not {type(embedding_params_q3).__name__}'
    assert 20000000 < embedding_params_q3 < 30000000, 'the embedding layer of bert-base has between 20 and 30 million parameters'

