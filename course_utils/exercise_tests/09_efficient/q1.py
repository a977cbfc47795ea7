from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_small_whole_number(lora_params_q1):
    from course_utils.grading.checks import number
    count = number(lora_params_q1, 'lora_params_q1')
    assert count == int(count), f'lora_params_q1 should be a whole number, got {count}'
    assert 0 < count < 110000000, f"{count:,.0f}: LoRA trains a small part of bert-base's 110 million parameters"

